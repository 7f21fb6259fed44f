"""Launch templates as EC2 keeps them: a name, an id and numbered versions of launch data,
each shown by EC2 only a while after it is made. Until then a describe, a new version or a
fleet that names it gets EC2's not-found error, which a caller must read as "not visible
yet", not as "gone".
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from steadyscale.ec2model.launch import LaunchRefusedError
from steadyscale.ec2model.market_settings import Market


@dataclass(frozen=True)
class TemplateVersionRecord:
    number: int
    data: Mapping[str, Any]
    created_at: float
    visible_at: float


@dataclass
class TemplateRecord:
    """One launch template; ``versions[n - 1]`` is version ``n``."""

    name: str
    template_id: str
    created_at: float
    visible_at: float
    versions: list[TemplateVersionRecord] = field(default_factory=list)
    default_version: int = 1

    @property
    def latest_version(self) -> int:
        return len(self.versions)


def name_not_found(name: str) -> LaunchRefusedError:
    return LaunchRefusedError(
        "InvalidLaunchTemplateName.NotFoundException",
        f"At least one of the launch templates specified in the request does not exist ({name}).",
    )


def id_not_found(template_id: str) -> LaunchRefusedError:
    return LaunchRefusedError(
        "InvalidLaunchTemplateId.NotFound",
        f"The specified launch template, with template ID {template_id}, does not exist.",
    )


def version_not_found(template_id: str, version: str) -> LaunchRefusedError:
    return LaunchRefusedError(
        "InvalidLaunchTemplateId.VersionNotFound",
        f"Could not find launch template version {version} for template {template_id}.",
    )


class TemplateBook:
    """The launch templates of one region, with when EC2 shows each version."""

    def __init__(self, settings: Market, seed: str) -> None:
        self.settings = settings
        self._rng = random.Random(f"{seed}/templates")
        self._by_name: dict[str, TemplateRecord] = {}
        self._by_id: dict[str, TemplateRecord] = {}

    def _delay(self) -> float:
        return self.settings.launch_template_visibility.sample(self._rng)

    def create(
        self, name: str, data: Mapping[str, Any], now: float, template_id: str | None = None
    ) -> TemplateRecord:
        """A new template with version 1 (``template_id`` when a backend chose it)."""
        if name in self._by_name:
            raise LaunchRefusedError(
                "InvalidLaunchTemplateName.AlreadyExistsException",
                f"Launch template name already in use ({name}).",
            )
        template_id = template_id or f"lt-{self._rng.getrandbits(68):017x}"
        version = TemplateVersionRecord(1, dict(data), now, now + self._delay())
        record = TemplateRecord(name, template_id, now, version.visible_at, [version])
        self._by_name[name] = self._by_id[template_id] = record
        return record

    def add_version(self, record: TemplateRecord, data: Mapping[str, Any], now: float) -> int:
        """Add the next version to a template; its number."""
        number = record.latest_version + 1
        record.versions.append(TemplateVersionRecord(number, dict(data), now, now + self._delay()))
        return number

    def find(
        self, now: float, *, name: str | None = None, template_id: str | None = None
    ) -> TemplateRecord:
        """The template EC2 shows now by name or id; raises EC2's not-found error while
        it is unknown or not visible yet."""
        if template_id:
            record = self._by_id.get(template_id)
            if record is None or now < record.visible_at:
                raise id_not_found(template_id)
            return record
        record = self._by_name.get(name or "")
        if record is None or now < record.visible_at:
            raise name_not_found(name or "")
        return record

    def shown(self, now: float) -> list[TemplateRecord]:
        """Every template EC2 shows now, oldest first."""
        return [r for r in self._by_name.values() if now >= r.visible_at]

    def versions(self, record: TemplateRecord, now: float) -> list[TemplateVersionRecord]:
        """The template's versions EC2 shows now."""
        return [v for v in record.versions if now >= v.visible_at]

    def version(
        self, record: TemplateRecord, wanted: str | None, now: float
    ) -> TemplateVersionRecord:
        """The version ``wanted`` names ("$Latest", "$Default", a number; None: the
        default) as EC2 shows it now; raises ``VersionNotFound`` otherwise."""
        if wanted in (None, "", "$Default"):
            number = record.default_version
        elif wanted == "$Latest":
            shown = self.versions(record, now)
            number = shown[-1].number if shown else record.default_version
        else:
            try:
                number = int(str(wanted))
            except ValueError:
                raise version_not_found(record.template_id, str(wanted)) from None
        if not 1 <= number <= record.latest_version:
            raise version_not_found(record.template_id, str(wanted))
        found = record.versions[number - 1]
        if now < found.visible_at:
            raise version_not_found(record.template_id, str(wanted))
        return found
