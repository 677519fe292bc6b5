"""The same module as :mod:`obslab.genai.agent` (moved into the GenAI package; this name stays)."""

import sys

from obslab.genai import agent

sys.modules[__name__] = agent
