"""Environments as code: ``slipway plan|apply|export`` with a ``slipway.yaml`` file
(``slipway_contracts.slipway_file``). ``state`` reads a project through the public API,
``plan`` compares it with the file (pure), ``apply`` makes the plan so, ``export`` writes the
file of an existing project."""
