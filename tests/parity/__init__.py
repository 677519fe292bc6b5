"""The differential parity harness: obslab against opentelemetry-sdk 1.45.1 with opentelemetry-distro."""
