"""The CI steps the workflows call through the CLI, one module per workflow job:

- ``matrix``: the plan job (build.yml): the planner's matrices -> GitHub job outputs;
- ``cibw``: the build-cells job: one planned job -> cibuildwheel's settings;
- ``cell``: the steps cibuildwheel runs per wheel: repair (the finish stage) and smoke;
- ``release``: the publish job: size limits, checks against the build records, provenance;
- ``summary``: the Markdown tables both jobs write to the step summary.
"""
