"""Analysis: costs, activity monitors, energy, robustness, reports."""
