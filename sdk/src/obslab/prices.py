"""The same module as :mod:`obslab.genai.prices` (moved into the GenAI package; this name stays)."""

import sys

from obslab.genai import prices

sys.modules[__name__] = prices
