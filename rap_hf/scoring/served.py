"""The model a scorer reaches through inference servers (`backend="server"`).

`ServedModel` stands where `ScoringModel` stands for in-process scoring: the scorer loads it, asks it
for a rollout engine, and names it in cache keys. Loading connects to the servers and checks them
(`rap_hf.rollouts.server.check_servers`: reachable, serving the model, taking images) before any row
is scored. The servers return text only, so the steps that read a model's insides (ACE's attention,
logit-CDE's log-probabilities) run on `local`, the same model's weights loaded here, when the config
names them (`local_model`); without them those steps are skipped.

Pickled (for `datasets.map` workers, local workers, Ray tasks), it travels as its settings: each
process opens its own clients.
"""

from __future__ import annotations

from typing import Any

from .model import ScoringModel


class ServedModel:
    """A model on inference servers, and optionally its local weights for ACE and logit-CDE.

    Args:
        name: The model as the servers list it (`/v1/models`).
        settings: The config (`RAPConfig` / `EvalConfig`): the servers, sampling on the wire, pixel bounds.
        local: Local weights of the same model (a folder or Hub id), or None.
        processor: The local model's processor (loaded or a reference), when `local` is given.
    """

    def __init__(self, name: str, settings, local=None, processor=None):
        self.name = str(name)
        self.settings = settings
        self.local = ScoringModel(local, processor) if local is not None else None
        self._pool = None
        self._engine = None
        self._check = None
        # The run's start checks every server; a copy sent to a worker joins a run already checked,
        # where a server it cannot reach may have died since: it is set aside, not refused.
        self.is_worker_copy = False

    # ----------------------------------------------------------------- what ScoringModel offers
    @property
    def model_ref(self) -> str:
        return self.name

    @property
    def processor_ref(self) -> str | None:
        return self.local.processor_ref if self.local is not None else None

    @property
    def user_processor(self) -> bool:
        return self.local is not None and self.local.user_processor

    @property
    def model(self):
        """The local model (for ACE and logit-CDE), or None."""
        return self.local.model if self.local is not None else None

    @property
    def processor(self):
        return self.local.processor if self.local is not None else None

    @property
    def tokenizer(self):
        return self.local.tokenizer if self.local is not None else None

    @property
    def device(self):
        return self.local.device if self.local is not None else None

    @property
    def loaded(self) -> bool:
        return self._engine is not None and (self.local is None or self.local.loaded)

    def load(self, **local_settings: Any) -> None:
        """Connect to the servers and check them; load the local weights (with `ScoringModel.load`'s
        keywords) when there are any."""
        if self.local is not None:
            self.local.load(**local_settings)
        if self._engine is None:
            from ..rollouts.server import ServerEngine

            settings = self.settings
            check = self.check()
            self._engine = ServerEngine(self._pool, self.name, server_n=settings.server_n,
                                        extra_body=settings.server_extra_body, pixel_bounds=settings.pixel_bounds(),
                                        honours_n=check.honours_n)

    def engine(self):
        """The rollout engine over the servers (connecting first if needed)."""
        if self._engine is None:
            self.load()
        return self._engine

    def check(self):
        """The servers' start check (`ServerCheck`), run once per process."""
        if self._check is None or self._pool is None:
            from ..rollouts.server import ServerPool, check_servers

            s = self.settings
            if self._pool is None:
                self._pool = ServerPool(s.server_urls, api_key=s.api_key(), concurrency=s.server_concurrency,
                                        timeout=s.server_timeout, max_wait=s.server_max_wait)
            self._check = check_servers(self._pool, self.name, n=1 if s.server_n == "off" else 2,
                                        extra_body=s.server_extra_body, strict=not self.is_worker_copy)
            if s.server_n == "on" and not self._check.honours_n:
                from ..rollouts.server import ServerRefused

                raise ServerRefused("a server returned one choice when asked for n = 2: it does not honour n; "
                                    "score with --server-n auto (M requests of their own seeds there) or off")
        return self._check

    def identity(self) -> str:
        """The served model as the servers describe it (and the local weights' identity, when given):
        another model under the same name is another identity."""
        if self._check is None:
            self.check()
        local = f"+local:{self.local.identity()}" if self.local is not None else ""
        return self._check.identity_string() + local

    def processor_identity(self) -> str | None:
        return self.local.processor_identity() if self.local is not None else None

    def close(self) -> None:
        """Close the servers' clients (a later use connects again)."""
        if self._pool is not None:
            self._pool.close()
        self._pool = self._engine = None

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_pool"] = state["_engine"] = None  # each process opens its own clients
        state["is_worker_copy"] = True
        return state


def skipped_steps(config) -> str | None:
    """What scoring through servers leaves out under `config`, in one sentence, or None."""
    if not config.uses_server or config.local_model is not None:
        return None
    skipped = [name for name, on in (("ACE", config.compute_ace), ("logit-CDE", config.compute_logit_cde)) if on]
    if not skipped:
        return None
    return (f"{' and '.join(skipped)} {'is' if len(skipped) == 1 else 'are'} not computed: inference servers return "
            "no attention weights or prompt log-probabilities. Pass the served model's weights as --local-model "
            "(RAPConfig.local_model) to compute them here over the servers' responses.")


def scoring_model_for(model, processor, config) -> ScoringModel | ServedModel:
    """The model a scorer under `config` runs: loaded here, or reached through inference servers
    (`model` is then the name the servers give it)."""
    if getattr(config, "uses_server", False):
        if not isinstance(model, (str, bytes)) and not hasattr(model, "__fspath__"):
            raise TypeError("backend='server' names the model as the servers list it (a string); pass local "
                            "weights for ACE and logit-CDE as RAPConfig.local_model")
        return ServedModel(str(model), config, getattr(config, "local_model", None), processor)
    return ScoringModel(model, processor)


def reference(loaded: ScoringModel):
    """What a model is given as again: its reference, or the loaded model when it has none."""
    return loaded.model_ref if loaded.model_ref is not None else loaded.model


def processor_reference(loaded: ScoringModel):
    """The processor as the user gave it: loaded (their settings), else its reference."""
    return loaded.processor if loaded.user_processor else loaded.processor_ref
