"""The dockable panels of the main window; each takes the model it shows (a RunsModel)."""
