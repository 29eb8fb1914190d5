"""Recording inside the SFU: per-track files from the forwarded packets, no transcoding.

One concept per module:

* :mod:`.jitter`: one stream's packets back in sequence order, a bounded wait for late ones;
* :mod:`.frames`: ordered packets to whole coded frames (depayloading), nothing corrupt;
* :mod:`.writer`: one track's frames muxed into WebM/Matroska with PyAV;
* :mod:`.track`: one published track (its simulcast layers) to one file, on one clock;
* :mod:`.manifest`: the timeline manifest beside the files;
* :mod:`.session`: one room's recording: the packet-path tap, the writing thread;
* :mod:`.storage`: the layout on disk, listing, safe file lookup, retention.

See docs/recording.md.
"""
