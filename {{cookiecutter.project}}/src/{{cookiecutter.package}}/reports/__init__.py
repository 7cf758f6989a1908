"""Pages for people: offline HTML reports (Jinja templates here, charts as inline SVG) and the model card."""
