"""The same module as :mod:`obslab.genai.evaluations` (moved into the GenAI package; this name stays)."""

import sys

from obslab.genai import evaluations

sys.modules[__name__] = evaluations
