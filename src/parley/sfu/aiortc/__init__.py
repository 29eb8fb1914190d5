"""The ONE place in Parley that touches private attributes of aiortc, aioice and pylibsrtp.

Tested against aiortc 1.16.x / aioice 0.13.x / pylibsrtp 1.0.x (pinned in
pyproject: ``aiortc>=1.16,<1.17``).  ``tests/sfu/test_aiortc_hooks.py`` and
``tests/sfu/test_media_sockets.py`` assert every attribute used here, so an upgrade
that moves them fails loudly there instead of silently decoding media again.
:func:`.hooks.check_compat` does the same check at runtime.

* :mod:`.hooks`: the packet path.  Plaintext RTP/RTCP in and out of a DTLS transport
  without aiortc's parsing, jitter buffers, decoders and per-packet coroutines; passive
  senders and receivers; the negotiated codecs and announced SSRCs.
* :mod:`.host_addresses`: which local addresses ICE gathers on (``--media-ip``, or
  aioice's own plus 127.0.0.1).
* :mod:`.shared_ports`: ICE host candidates on fixed UDP ports (``--media-port``), one
  socket per port shared by several ICE connections, and a server-reflexive candidate
  for ``--media-public-ip``.

What is hooked, and why (see ``bench/sfu`` RESULTS, "How aiortc's pieces fit an SFU"):

* ``RTCDtlsTransport._handle_rtp_data`` / ``_handle_rtcp_data`` (instance overrides):
  plaintext RTP/RTCP bytes right after SRTP unprotect, before ``RtpPacket.parse``,
  the jitter buffer and the decoders.  Our callbacks are synchronous.
* ``RTCDtlsTransport._tx_srtp`` + ``RTCIceTransport._connection._nominated``: to
  protect and ``sendto`` forwarded packets synchronously (no coroutine per packet).
* ``RTCRtpSender._run_rtp`` / ``_run_rtcp`` (instance overrides): the SFU's senders
  never pull a track, never encode, and do not send their own (empty) sender reports;
  the forwarder sends RTP and RTCP for them.
* ``RTCRtpReceiver.receive`` (instance override): the publisher-side receivers start
  no decoder thread and no RTCP task; the forwarder reports to publishers itself.
* pylibsrtp ``Session._srtp``/``_cdata``/``_buffer`` + ``pylibsrtp._binding.lib``:
  :func:`.hooks.fast_rtp_protect` calls ``srtp_protect`` without the per-call wrapper.
* ``RTCRtpTransceiver._codecs``: the codecs negotiated by ``setRemoteDescription``
  (:func:`.hooks.restrict_negotiated_codecs` keeps VP8 or H.264 / Opus, nothing else).
* ``RTCRtpSender._ssrc`` / ``_rtx_ssrc``: the SSRCs announced in our SDP.
* ``aioice.ice.get_host_addresses`` (module function): which local addresses ICE
  gathers (aioice skips 127.0.0.1 and otherwise uses every interface): only
  ``--media-ip``'s (:func:`.host_addresses.restrict_host_addresses`), or aioice's plus
  127.0.0.1 (:func:`.host_addresses.include_loopback`, what ``parley serve`` does
  without ``--media-ip``).
* ``aioice.ice.Connection.get_component_candidates`` (instance override, only on the
  SFU's own connections, see :class:`.shared_ports.MediaSockets`) +
  ``Connection._protocols`` + ``StunProtocol.receiver``/``transactions``/
  ``local_candidate``: host candidates on UDP ports from ``--media-port``, sockets
  shared by several ICE connections (demultiplexed by STUN USERNAME and remote
  address), and a server-reflexive candidate for ``--media-public-ip``.

Importing this package imports nothing of aiortc; its modules do.
"""
