"""The simulator's HTTP handlers, one module per endpoint group of the useapi.net MiniMax API.

``create`` (POST videos/agent-create) with ``stream`` (its event stream) and ``callbacks`` (replyUrl),
``videos`` (GET videos/ and videos/{videoId}), ``templates`` (GET videos/agent-templates), ``files``,
``accounts`` (GET accounts and scheduler/available), ``control`` (the simulator-only ``/_sim``), over ``common``.

>>> from minimax_dagster.simulator.endpoints import common
>>> common.API_PREFIX
'/v1/minimax'
"""
