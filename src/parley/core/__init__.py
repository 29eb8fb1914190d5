"""The rules of the meeting, without I/O: protocol, rooms, rate limits, resume tokens,
the broker interface.  Nothing here imports a transport, the store or the SFU."""
