"""The fixed recipe catalog behind search and "make now" recommendations.

Generated deterministically so that search results, and therefore response sizes, are the
same on every run: load-test numbers should change because the load changed, not the data.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass

_STYLES = ("Smoky", "Lemon", "Garlic", "Spicy", "Herbed", "Crispy", "Creamy", "Miso")
_DISHES = (
    ("Chicken", "poultry"),
    ("Tofu Bowl", "vegan"),
    ("Lentil Soup", "vegan"),
    ("Pasta", "vegetarian"),
    ("Salmon", "fish"),
    ("Risotto", "vegetarian"),
    ("Tacos", "street-food"),
    ("Salad", "vegan"),
    ("Curry", "vegetarian"),
    ("Flatbread", "baking"),
    ("Ramen", "noodles"),
)


@dataclass(frozen=True)
class Recipe:
    id: str
    title: str
    tags: tuple[str, ...]
    minutes: int

    def to_json(self) -> dict[str, object]:
        data = asdict(self)
        data["tags"] = list(self.tags)
        return data


def _build() -> tuple[Recipe, ...]:
    recipes = []
    for i, (style, (dish, tag)) in enumerate((s, d) for s in _STYLES for d in _DISHES):
        recipes.append(
            Recipe(
                id=f"r-{i + 1:03d}",
                title=f"{style} {dish}",
                tags=(tag, style.lower()),
                # 10..65 minutes, spread but fixed.
                minutes=10 + (i * 7) % 56,
            )
        )
    return tuple(recipes)


CATALOG: tuple[Recipe, ...] = _build()


def search(query: str, limit: int = 10) -> tuple[list[Recipe], int]:
    """Case-insensitive match of every word of ``query`` against title and tags.

    Returns the first ``limit`` matches and the total number of matches.
    """
    words = query.lower().split()
    matches = [r for r in CATALOG if all(w in r.title.lower() or any(w in t for t in r.tags) for w in words)]
    return matches[: max(0, limit)], len(matches)


def make_now(rng: random.Random, max_minutes: int = 30, count: int = 5) -> list[Recipe]:
    """A few quick recipes, varied per call the way a real recommender would be."""
    quick = [r for r in CATALOG if r.minutes <= max_minutes]
    return rng.sample(quick, min(count, len(quick)))
