"""One package per provider, each owning its catalogue (limits as data), its sans-I/O
wire protocol and its sync + async clients:

* :mod:`mm_embed.providers.fgclip`: 360 FG-CLIP.
* :mod:`mm_embed.providers.viking`: Volcengine VikingDB embedding v2.

Both clients are built on :mod:`mm_embed.providers._client`, a core generic over the
transport; :mod:`mm_embed.providers._wire` holds what the two protocols share.
"""
