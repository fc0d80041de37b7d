"""Imported once, by the fork server of `serve` (:mod:`segmerge.serve.starts`), never elsewhere.

Why a module: ``set_forkserver_preload`` takes module names, and what the
server must hold before it forks a run is the engine a run imports (pandas,
pyarrow, DuckDB, Jinja, the connectors shipped with Segmerge), so that a fire
forks an interpreter that has it instead of importing it again.

Why the environment around the imports: numpy's OpenBLAS and pyarrow's
jemalloc start threads when they load; a process that forks must have none
(a fork copies only the thread that forks, and any lock another one held stays
held in the child). With one BLAS thread and no jemalloc background thread the
server stays single-threaded; a run does no linear algebra, and jemalloc then
purges on the allocating thread. The variables are removed again after the
imports, so the processes a run starts get `serve`'s environment unchanged, as
are the import path variables `serve` set for this server
(:func:`segmerge.serve.starts.prepare_server`).
"""

from __future__ import annotations

import importlib
import os

from segmerge.serve.zygote import restore_environment

#: what a run imports, at its first need (its import is lazy in the daemon)
ENGINE = (
    "segmerge.serve.child",
    "segmerge.run.pipeline",
    "segmerge.render.run_pool",
    "connectors.files",
    "connectors.outbox",
    "duckdb",
    "pyarrow.parquet",
    "pyarrow.dataset",
)
#: set only while the engine loads: a single-threaded server (see above)
ONE_THREAD = {"OPENBLAS_NUM_THREADS": "1", "JE_ARROW_MALLOC_CONF": "background_thread:false"}


def _load() -> None:
    added = [name for name in ONE_THREAD if name not in os.environ]  # the user's choice wins
    os.environ.update({name: ONE_THREAD[name] for name in added})
    try:
        for name in ENGINE:
            try:
                importlib.import_module(name)
            except Exception:  # noqa: BLE001 - the run that needs it imports it again, and says why
                continue
        _build()
    finally:
        for name in added:
            del os.environ[name]


def _build() -> None:
    """What every run would build again, built once here: each fire forks it ready.

    The rules' LALR parser is made at a run's first condition (50-80 ms of CPU, more
    than the imports the run still does lazily): parsing one condition builds it.
    """
    try:
        from segmerge.rules.parser import parse

        parse("true")
    except Exception:  # noqa: BLE001 - the run builds it again, and says what is wrong
        return


restore_environment()  # started through exec: see segmerge.serve.starts.prepare_server
_load()
