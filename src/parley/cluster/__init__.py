"""Several nodes, one meeting: Redis fan-out and shared room state."""

from .redis_broker import RedisBroker
from .replication import Replicator, new_node_id

__all__ = ["RedisBroker", "Replicator", "new_node_id"]
