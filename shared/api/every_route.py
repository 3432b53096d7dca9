"""Importing this module registers every route of the api (what ``import shared.api`` did before the
route table loaded its modules lazily): for the tests and tools that walk the whole table."""

from shared.api import load_all

load_all()
