# The two commands: `make demo` (set up, then run the app on the bundled demo) and
# `make test` (set up, then run the tests). Set-up is scripts/setup.sh; it is quick when done.
.PHONY: setup demo test teachers

setup:
	@./scripts/setup.sh

demo: setup
	.venv/bin/distill-studio assets/examples/digits-experts.distill.json

test: setup
	QT_QPA_PLATFORM=offscreen .venv/bin/python -m pytest -q

teachers: setup
	.venv/bin/python assets/build_demo_teachers.py
