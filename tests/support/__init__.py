"""What the suites share: the processes a test runs and the clients it talks to them with.

* :mod:`tests.support.processes`: starting, probing and stopping (by PID) child processes;
  free ports; where a process runs (the host, or a network namespace).
* :mod:`tests.support.parley_process`: :class:`~tests.support.parley_process.ParleyProcess`,
  the one class that runs ``parley serve`` for every suite.
* :mod:`tests.support.redis_server`: the one ``redis-server`` helper.
* :mod:`tests.support.coturn`: the one coturn helper and its test config.
* :mod:`tests.support.ws_client`: the WebSocket test client (and ``Clients``).
* :mod:`tests.support.tls`: a self-signed certificate for 127.0.0.1.
"""
