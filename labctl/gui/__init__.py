"""The operator GUI (``labctl gui``): run, watch and stop measurements and series.

Built on qtpy (PySide6) and pyqtgraph, with pymeasure's parameter inputs
(:class:`pymeasure.display.widgets.InputsWidget`). Runs go through the same
headless engine as ``labctl run`` (:func:`labctl.runs.run_procedure`) in a
worker thread; what they emit reaches the GUI thread through Qt signals and
feeds in-memory buffers that the plots redraw from (never the results file).
See ``docs/gui.md`` for what each panel shows.
"""
