"""The command-line programs: ``alexnet-parity``, ``alexnet-train``, ``alexnet-eval``,
``alexnet-predict``, the plots, ``make demo``, and the one error path they share (``console``).

Each module here parses arguments, calls the libraries below (``parity``, ``alexnet_torch``,
``alexnet_keras``, ``alexnet_training``, ``alexnet_spec``) and prints; none holds a function a
library needs. Nothing below imports this package.
"""
