"""Root conftest. The medgate plugin itself is loaded through its pytest11 entry point
(src/medgate/plugin.py), so it also serves runs outside this folder; this file only sets
Hypothesis profiles for the suite's own tests."""

import os

from hypothesis import HealthCheck, settings

pytest_plugins = ["pytester"]  # the suite's own tests run whole pytest sessions

settings.register_profile("ci", max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", max_examples=50, deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")
