"""What-if: simulate a proposed waterfall over stored provider answers, and suggest cheaper ones.

``history`` reads what every provider answered (no provider is called), ``simulate`` runs the
live planning and resolution code on it, ``suggest`` searches one field's configurations,
``config`` builds proposals and the SQL that applies them. Nothing here writes silver.
"""

from pipeline.whatif.config import ConfigError, Proposal, apply_sql, edit_field, load_rows, today
from pipeline.whatif.history import Selection, TrackHistory, load_history
from pipeline.whatif.simulate import FieldFigures, Simulation, simulate
from pipeline.whatif.suggest import Suggestion, Suggestions, suggest

__all__ = [
    "ConfigError",
    "FieldFigures",
    "Proposal",
    "Selection",
    "Simulation",
    "Suggestion",
    "Suggestions",
    "TrackHistory",
    "apply_sql",
    "edit_field",
    "load_history",
    "load_rows",
    "simulate",
    "suggest",
    "today",
]
