# Shortcuts for the scripts the README names. Everything runs as root.
.PHONY: demo test lint down bench

LAB ?= demo

demo:
	scripts/demo.sh

test:
	scripts/test.sh $(TIER)

lint:
	scripts/test.sh lint

# make bench [RUNS=3] [ONLY=converge] [PEER=1]: the benchmark suite (python -m bench).
bench:
	.venv/bin/python -m bench --runs $(or $(RUNS),3) $(if $(ONLY),--only $(ONLY)) $(if $(PEER),--peer)

down:
	.venv/bin/clusterctl lab down $(LAB)
