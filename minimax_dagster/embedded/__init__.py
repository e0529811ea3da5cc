"""The embedded services (the ``simulator`` extra): the MiniMax simulator and moto's S3 server on loopback ports.

One launcher for the demo, the tests, the benchmarks and the scale tooling:

* :class:`EmbeddedServices` (``services.py``): both servers and a bucket, with the environment that points the
  code locations at them;
* :class:`EmbeddedS3Server` (``s3.py``): moto's S3 in a thread, with S3's atomic conditional writes;
* :class:`SimulatorProcess` / :class:`ServerProcess` (``processes.py``): the same servers in child processes.

>>> from minimax_dagster.embedded import EmbeddedServices
>>> EmbeddedServices(bucket="b").bucket
'b'
"""

from minimax_dagster.embedded.processes import ServerProcess, SimulatorProcess
from minimax_dagster.embedded.s3 import EmbeddedS3Server, SerializedWrites
from minimax_dagster.embedded.services import EmbeddedServices

__all__ = ["EmbeddedS3Server", "EmbeddedServices", "SerializedWrites", "ServerProcess", "SimulatorProcess"]
