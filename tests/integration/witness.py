"""What the ingest witness received: the reader lives in the SDK's pytest plugin (obslab.testing.witness),
which the obslab_lab fixture uses too."""

from obslab.testing.witness import Witness, attributes, value  # noqa: F401
