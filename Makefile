# Shortcuts for the scripts the README names. Everything runs as root.
.PHONY: demo test lint down

LAB ?= demo

demo:
	scripts/demo.sh

test:
	scripts/test.sh $(TIER)

lint:
	scripts/test.sh lint

down:
	.venv/bin/clusterctl lab down $(LAB)
