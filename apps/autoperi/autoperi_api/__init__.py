"""autoperi_api: AutoPeri from Python (notebooks and scripts), one import for the common tasks.

    import autoperi_api as ap

    model = ap.load("checkpoints/perov_5_csp")       # any checkpoint; model.tasks says what it does
    crystals = model.predict(["SrTiO3"], n=4)        # structures for compositions (task csp)
    scores = ap.score(crystals)                      # CHGNet energy, validity, space group
    report = ap.evaluate(crystals, "perov_5:test", task="dng")

`load` wraps `autoperi_model.Generator` (the only way to sample); `score` runs the scorer
service's core in this process; `evaluate` is `autoperi_eval.evaluate`. Crystals are
`xtal.Crystal`. Names load on first use, so `import autoperi_api` is quick.
"""

from svc_kit import lazy_exports

__all__ = ["Crystal", "EvalReport", "Model", "Scores", "evaluate", "load", "score"]

__getattr__ = lazy_exports(
    __name__,
    {
        "Model": "._model",
        "load": "._model",
        "Scores": "._score",
        "score": "._score",
        "EvalReport": "._evaluate",
        "evaluate": "._evaluate",
        "Crystal": "._model",
    },
)
