"""The scorecards and views as files: from the scorecard model to HTML, Markdown, JSON, JUnit,
CSV and PDF.

* :mod:`~audit.report.page` — the page view model: what a scorecard page shows;
* :mod:`~audit.report.charts` — chart geometry (axes, bars, curves), nothing of the page;
* :mod:`~audit.report.escape` — platform strings as inert text, for every format;
* :mod:`~audit.report.words` — the model's values in words, as messages to translate;
* :mod:`~audit.report.templating` — the jinja2 environment and its translations;
* :mod:`~audit.report.renderer` — the :class:`~audit.report.renderer.Renderer` protocol;
* one module per format — :mod:`~audit.report.html`, :mod:`~audit.report.markdown`,
  :mod:`~audit.report.json`, :mod:`~audit.report.junit`, :mod:`~audit.report.csv`,
  :mod:`~audit.report.pdf` (printed by :mod:`~audit.report.chromium`) — registered in
  :mod:`~audit.report.registry`, which writes them (:func:`~audit.report.registry.render_formats`);
* :mod:`~audit.report.views` — the comparison, trend and diff views.

This module imports nothing, so the light modules (:mod:`~audit.report.words`,
:mod:`~audit.report.chromium`) load without jinja2.
"""
