"""The pytest plugin: options, the run's state, the per-model and per-task gates, scheduling
by model under xdist and GPU placement. The only layer that imports pytest; its hooks are in
``medgate.plugin.hooks`` (the pytest11 entry point)."""
