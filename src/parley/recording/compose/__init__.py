"""``parley compose``: one watchable file from a recording's tracks, offline.

* :mod:`.layout`: where each tile goes at a moment (grid, active speaker, shared screen);
* :mod:`.font`: a small bitmap font for the names on the tiles (no font library needed);
* :mod:`.render`: decodes the tracks, draws the frames, mixes the audio, encodes.

See docs/recording.md.
"""
