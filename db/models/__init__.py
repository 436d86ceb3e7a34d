"""Typed SQLAlchemy 2 models for every medallion table; ``Base.metadata`` covers all of them."""

from db.models.base import Base

__all__ = ["Base"]
