"""The test bed: what the project needs to test and demonstrate pruning without a hub download.

`testbed.tiny` builds the small LLaVA-NeXT (one builder for training and tests), `testbed.training`
trains it from scratch on CPU (`gprune train-tiny`), `testbed.fixtures` writes small benchmark data
in the real schemas (`gprune fixtures`). Nothing here is pruning, and `gprune/` never imports it.
"""
