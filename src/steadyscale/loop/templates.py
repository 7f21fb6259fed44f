"""Launch templates of fleet node types: one per node type, named by cluster and node
type, created from its ``node_config`` and given a new version only when that content
changes (its hash is in the ClientToken, so a repeated create is the same create), or the
template the user names. A template EC2 does not show yet is a state: the node type's
launch waits a tick, nothing fails."""

from __future__ import annotations

from steadyscale.config import ClusterConfig
from steadyscale.config.fleet import content_hash, template_data
from steadyscale.core.instances import TAG_CLUSTER, TAG_NODE_TYPE
from steadyscale.errors import CloudError
from steadyscale.loop.report import Reporter, TickReport
from steadyscale.providers.protocol import CloudProvider, NotVisibleYet, TemplateVersion
from steadyscale.providers.wire import merge_tags

# What EC2 answers a create of a name it has (our earlier create, not shown yet).
ALREADY_EXISTS = "InvalidLaunchTemplateName.AlreadyExistsException"


def template_name(cluster_name: str, node_type: str) -> str:
    """``steadyscale-<cluster>-<node type>``: EC2 allows 3-128 of [a-zA-Z0-9().-/_]."""
    raw = f"steadyscale-{cluster_name}-{node_type}"
    return "".join(c if c.isalnum() or c in "().-/_" else "_" for c in raw)[:128]


class Templates:
    """The launch template version each fleet node type launches now."""

    def __init__(self, config: ClusterConfig, provider: CloudProvider, reporter: Reporter) -> None:
        self.config = config
        self.provider = provider
        self.reporter = reporter
        # node type -> (content hash, the version carrying it), once EC2 showed it.
        self._ready: dict[str, tuple[str, TemplateVersion]] = {}
        # node type -> (content hash, version number) created and not shown yet.
        self._made: dict[str, tuple[str, int]] = {}

    def data(self, node_type: str) -> dict[str, object]:
        """The LaunchTemplateData of a node type: its node_config, its volumes tagged with
        the cluster and node type (the instances get their tags from CreateFleet)."""
        spec = self.config.available_node_types[node_type]
        data = template_data(spec.node_config)
        tags = {TAG_CLUSTER: self.config.cluster_name, TAG_NODE_TYPE: node_type}
        data["TagSpecifications"] = merge_tags(
            data.get("TagSpecifications"), tags, resource_types=("volume",), precedence="ours"
        )
        return data

    def version(self, node_type: str, report: TickReport) -> TemplateVersion | None:
        """The version to launch, or None while EC2 does not show it yet (then it was
        created, or asked for, this tick or before: the launch waits)."""
        spec = self.config.available_node_types[node_type]
        if spec.launch_template is not None:
            ref = spec.launch_template
            found = self._named(node_type, ref.name, ref.version)
            if found is None:
                report.errors.append(
                    f"launch template {ref.name} version {ref.version} not found (yet) for "
                    f"{node_type}; check launch_template in the config"
                )
            return found
        name = template_name(self.config.cluster_name, node_type)
        data = self.data(node_type)
        digest = content_hash(data)
        ready = self._ready.get(node_type)
        if ready is not None and ready[0] == digest:
            return ready[1]
        try:
            return self._find_or_create(node_type, name, data, digest, report)
        except CloudError as exc:
            report.errors.append(f"launch template {name}: {exc.code} (tried again next tick)")
            return None

    def _find_or_create(
        self, node_type: str, name: str, data: dict[str, object], digest: str, report: TickReport
    ) -> TemplateVersion | None:
        """The version carrying ``data``: one EC2 shows with that content (or the one we
        made for it), else made now. Creates are idempotent by a token from the content, so
        a repeat after a restart (or where EC2 shows the data a little differently) returns
        the version made the first time rather than another."""
        token = content_hash({"name": name, "data": data})
        versions = self.provider.launch_template_versions(name)
        made = self._made.get(node_type)
        if isinstance(versions, NotVisibleYet):
            try:
                version = self.provider.create_launch_template(name, data, f"ss-lt-{token}")
            except CloudError as exc:
                if exc.code != ALREADY_EXISTS:
                    raise
                return None  # made before, not shown yet
            if made is None or made != (digest, version.version):
                self._announce(report, node_type, f"{name} created")
            self._made[node_type] = (digest, version.version)
            return None
        for found in reversed(versions):
            mine = made is not None and made == (digest, found.version)
            if mine or content_hash(found.data) == digest:
                self._ready[node_type] = (digest, found)
                self._made.pop(node_type, None)
                return found
        if made is not None and made[0] == digest:
            return None  # made, not shown yet
        version = self.provider.create_launch_template_version(name, data, f"ss-ltv-{token}")
        self._made[node_type] = (digest, version.version)
        self._announce(report, node_type, f"{name}: version {version.version} for its node_config")
        return None

    def _announce(self, report: TickReport, node_type: str, what: str) -> None:
        self.reporter.emit(report, "template", f"{what}; {node_type} launches once EC2 shows it")

    def _named(self, node_type: str, name: str, version: int | str) -> TemplateVersion | None:
        """The user's template, at the version the config names (``$Latest``: the newest
        EC2 shows when first asked, kept: a resend must name the same version)."""
        ready = self._ready.get(node_type)
        if ready is not None and ready[0] == f"{name}:{version}":
            return ready[1]
        try:
            versions = self.provider.launch_template_versions(name)
        except CloudError:
            return None
        if isinstance(versions, NotVisibleYet) or not versions:
            return None
        chosen = versions[-1] if version == "$Latest" else None
        chosen = chosen or next((v for v in versions if v.version == version), None)
        if chosen is not None:
            self._ready[node_type] = (f"{name}:{version}", chosen)
        return chosen
