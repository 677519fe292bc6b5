"""The same module as :mod:`obslab.genai.mcp` (moved into the GenAI package; this name stays)."""

import sys

from obslab.genai import mcp

sys.modules[__name__] = mcp
