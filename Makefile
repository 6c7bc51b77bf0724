# The two commands: `make demo` (set up, then open the app on the bundled demo) and
# `make test` (set up, lint, then run all the tests). Set-up is scripts/setup.sh; it is quick when done.
DEMO := assets/examples/digits-experts.distill.json
.PHONY: setup demo test lint teachers screenshot

setup:
	@./scripts/setup.sh

demo: setup
	@if [ -n "$$DISPLAY$$WAYLAND_DISPLAY" ]; then \
	  .venv/bin/distill-studio $(DEMO); \
	else \
	  echo "No display here: running the demo headless (the window needs a desktop session)."; \
	  .venv/bin/distill-studio $(DEMO) --headless; \
	fi

test: setup lint
	QT_QPA_PLATFORM=offscreen .venv/bin/python -m pytest -q --durations=25

# ruff (style and likely bugs) and the import contracts in pyproject.toml (DESIGN.md's layers)
lint: setup
	.venv/bin/ruff check .
	.venv/bin/lint-imports

teachers: setup
	.venv/bin/python assets/build_demo_teachers.py

screenshot: setup
	.venv/bin/distill-studio $(DEMO) --screenshot assets/screenshot.png
	rm -rf .screenshot-run && .venv/bin/distill-studio $(DEMO) --run --quit-when-done \
	  --db .screenshot-run/runs.sqlite --screenshot assets/screenshot-run.png; rm -rf .screenshot-run
	rm -rf .screenshot-run && .venv/bin/distill-studio assets/examples/digits-compressed.distill.json \
	  --run --quit-when-done --db .screenshot-run/runs.sqlite --screenshot assets/screenshot-export.png; \
	  rm -rf .screenshot-run
	.venv/bin/python scripts/screenshots.py assets
