"""A small corpus whose texts share few words, so retrieval order is predictable with the
emulator's n-gram (dense) and weighted-token (sparse) stand-in encoders."""

from __future__ import annotations

FACTS = {
    "banana": "Bananas are long yellow fruit that grow in tropical bunches.",
    "volcano": "Volcanoes erupt molten lava and ash from deep underground chambers.",
    "penguin": "Penguins are flightless seabirds that swim in icy southern oceans.",
    "violin": "The violin is a bowed string instrument with four tuned strings.",
    "glacier": "Glaciers are slow rivers of compacted snow carving mountain valleys.",
    "bakery": "A bakery sells fresh bread, croissants and pastries every morning.",
    "comet": "Comets are icy bodies that grow glowing tails near the sun.",
    "chess": "Chess is a strategy board game played with kings, queens and pawns.",
    "coffee": "Coffee beans are roasted seeds brewed into a dark bitter drink.",
    "tulip": "Tulips are spring flowers with cup shaped petals in bright colours.",
}

#: (query, key of the fact that must rank first)
QUERIES = [
    ("yellow bananas in tropical bunches", "banana"),
    ("which instrument has four strings and a bow", "violin"),
    ("molten lava erupts from volcanoes", "volcano"),
]


def synthetic(n: int) -> list[str]:
    """``n`` distinct texts, each with its own rare words."""
    return [f"Entry {i} records specimen code{i}x and label tag{i * 7}y." for i in range(n)]
