"""The node-to-node media relay: one room's media across several SFU nodes.

A publisher's streams are forwarded by the node that receives them (the *origin*) to
every other node with media participants in the room (one copy per node, however many
subscribers it has); there they enter the room's router as stand-in publishers
(:mod:`.inbound`), and key frame requests and NACKs go back (:mod:`.outbound`).
Plain RTP/RTCP in UDP datagrams between nodes, each with a node id, a replay counter and
an HMAC tag of the cluster's relay secret (:mod:`.wire`); :mod:`.node` is this node's
socket.  Which nodes are in which room: :mod:`parley.cluster.media_relay`.
"""
