"""Every setting in one place: MEMENTO_* environment variables, then `<home>/config.toml`, then defaults."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import platformdirs
from pydantic import AliasChoices, Field
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from memento_mcp.errors import ConfigError
from memento_mcp.auth.tokens import TokenEntry

DEFAULT_HOME = Path(platformdirs.user_data_dir("memento-mcp", appauthor=False))


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MEMENTO_", extra="ignore", populate_by_name=True)

    home: Path = Field(DEFAULT_HOME, description="Directory holding the case bank and checkpoints")
    namespace: str = Field("default", description="Case bank used when a tool call names none")
    database_url: str | None = Field(
        None,
        description="postgresql://user:pass@host:5432/db to keep the bank in PostgreSQL + pgvector"
        " (several replicas can share it); unset: the SQLite file under home",
    )

    # transports
    host: str = "127.0.0.1"
    port: int = 8000
    auth_token: str | None = Field(
        None, description="One bearer token for HTTP and SSE, with every namespace (named auth_token)"
    )
    tokens: list[TokenEntry] = Field(
        default_factory=list, description="[[tokens]] in config.toml: name, sha256, namespaces, ..."
    )
    writes_per_minute: int = Field(
        3000, ge=0, description="Per token: calls that store or delete cases; 0: unlimited"
    )
    labels_per_minute: int = Field(
        3000, ge=0, description="Per token: outcomes reported (each labels cases); 0: unlimited"
    )

    # retrieval
    candidates: int = Field(50, ge=1, le=1000, description="Dense + lexical candidates before ranking")
    ranking: Literal["learned", "similarity"] = Field(
        "learned", description="learned: outcomes re-rank cases at once; similarity: cosine only"
    )
    ann_min_cases: int = Field(
        20_000, ge=1, description="Namespaces this big are searched through an HNSW index file"
    )
    explore: bool = Field(
        True, description="Thompson sampling among on-topic cases; false shows the best estimates"
    )
    abstain_below: float = Field(
        0.05, ge=0.0, le=1.0, description="Return no cases when none has P(help) above this; 0: never"
    )
    retrain_every: int = Field(50, ge=1, description="Retrain the prior model after this many labels")
    keep_checkpoints: int = Field(5, ge=0, description="Inactive retriever versions kept on disk")
    max_field_bytes: int = Field(65536, ge=1024, description="Largest accepted text field")

    # solve_task
    llm_base_url: str | None = None
    llm_api_key: str | None = Field(
        None, validation_alias=AliasChoices("MEMENTO_LLM_API_KEY", "OPENAI_API_KEY")
    )
    planner_model: str | None = None
    executor_model: str | None = None
    judge_model: str | None = Field(None, description="LLM judge for expected_answer; else exact match")
    mcp_servers: Path | None = Field(None, description="Claude-Desktop-style mcpServers JSON file")
    llm_timeout_s: float = Field(120.0, gt=0, description="One LLM request at most")
    tool_timeout_s: float = Field(120.0, gt=0, description="One child tool call at most")
    solve_max_cycles: int = Field(3, ge=1, description="Plan → execute → replan cycles at most")
    solve_max_steps: int = Field(8, ge=1, description="Tool-calling steps per subtask at most")
    solve_deadline_s: float = Field(600.0, gt=0, description="Wall-clock budget of one solve_task")
    solve_max_tokens: int = Field(500_000, ge=1000, description="Token budget of one solve_task")

    @property
    def db_path(self) -> Path:
        return self.home / "memento.db"

    @property
    def bank_location(self) -> str | Path:
        """Where the bank lives: the database URL when one is set, else the SQLite file."""
        return self.database_url or self.db_path

    @property
    def tokens_file(self) -> Path:
        """What `memento-mcp token add|revoke` maintains (hashes only)."""
        return self.home / "tokens.json"

    @property
    def checkpoint_dir(self) -> Path:
        return self.home / "retriever"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The config file lives in the home that the environment (or the default) names.
        home = Path(env_settings().get("home") or DEFAULT_HOME)  # type: ignore[arg-type]
        try:
            (home / "config.toml").is_file()
        except PermissionError as exc:  # one clear line, not a traceback from the TOML reader
            raise ConfigError(
                f"permission problem: the data directory {home} cannot be reached (a directory"
                " on that path is closed to this user); fix its permissions, or choose a data"
                " directory you own with --home or MEMENTO_HOME"
            ) from exc
        toml = TomlConfigSettingsSource(settings_cls, toml_file=home / "config.toml")
        return (init_settings, env_settings, toml)
