"""env/workshop/k8s/ (README "Workshops"): the Zero to JupyterHub values, the Kata RuntimeClass and
the egress NetworkPolicy, checked without a cluster.

values.yaml is merged over the chart's own defaults as helm merges them (maps key by key, any
other value replaced, null removes the key) and the result is validated against the chart's
values schema (env/workshop/k8s/chart/, copied from the chart release): a key the chart does not
document, or a value of the wrong type, fails here as `helm install` would fail. Then what the
files must agree on: the RuntimeClass the pods name, the volume the image expects, the instructor
view's files and scopes, no egress but the hub and DNS.
"""
import copy
import json
import re
from pathlib import Path

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "env" / "workshop" / "k8s"


def load(name):
    return yaml.safe_load((K8S / name).read_text())


def helm_merge(base, over):
    """Values as helm merges a -f file over the chart's defaults."""
    out = copy.deepcopy(base)
    for key, value in over.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = helm_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def errors(values):
    schema = json.loads((K8S / "chart" / "values.schema.json").read_text())
    merged = helm_merge(yaml.safe_load((K8S / "chart" / "values.yaml").read_text()), values)
    return [f"{'.'.join(map(str, e.absolute_path))}: {e.message}"
            for e in jsonschema.Draft7Validator(schema).iter_errors(merged)]


def test_the_values_are_what_the_chart_documents():
    assert errors(load("values.yaml")) == []


@pytest.mark.parametrize("path, value", [
    (("singleuser", "extraPodConf"), {"runtimeClassName": "kata"}),         # a misspelt key
    (("singleuser", "networkPolicy", "egressAllowRules", "everything"), True),
    (("singleuser", "memory", "limit"), ["2G"]),                            # a wrong type
    (("cull", "enabled"), "yes"),
    (("hub", "extraFiles", "instructor"), {"stringData": "x"}),             # no mountPath
])
def test_the_schema_check_catches_what_helm_would_refuse(path, value):
    values = load("values.yaml")
    node = values
    for key in path[:-1]:
        node = node.setdefault(key, {})
    node[path[-1]] = value
    assert errors(values), f"{'.'.join(path)} = {value!r} passed the chart's schema"


def test_the_pods_run_under_the_kata_runtime_class():
    rc = load("runtimeclass.yaml")
    assert (rc["apiVersion"], rc["kind"]) == ("node.k8s.io/v1", "RuntimeClass")
    assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", rc["metadata"]["name"])
    assert rc["handler"] and re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", rc["handler"])
    assert load("values.yaml")["singleuser"]["extraPodConfig"]["runtimeClassName"] == rc["metadata"]["name"]


def test_the_participants_servers_run_the_workshop_image_as_docker_does():
    su = load("values.yaml")["singleuser"]
    dockerfile = (ROOT / "env" / "workshop" / "image" / "Dockerfile").read_text()
    assert f'CMD ["bash", "{su["cmd"][1]}"]' in dockerfile
    config = (ROOT / "env" / "workshop" / "jupyterhub_config.py").read_text()
    assert f'"{su["storage"]["homeMountPath"]}"}}' in config          # the same volume mount point
    assert f'c.Spawner.default_url = "{su["defaultUrl"]}"' in config
    assert su["uid"] == 0 and su["allowPrivilegeEscalation"] is True


def test_the_instructor_view_is_mounted_and_may_read_the_servers():
    hub = load("values.yaml")["hub"]
    mounted = {f["mountPath"] for f in hub["extraFiles"].values()}
    service = hub["services"]["instructor"]
    assert service["command"][1] in mounted
    assert {Path(p).name for p in mounted} == {"instructor.py", "progress_view.py"}
    port = int(service["url"].rsplit(":", 1)[1])
    assert port in {p["targetPort"] for p in hub["service"]["extraPorts"]}
    assert port in {p["port"] for rule in hub["networkPolicy"]["ingress"] for p in rule["ports"]}
    scopes = set(hub["loadRoles"]["instructor-view"]["scopes"])
    config = (ROOT / "env" / "workshop" / "jupyterhub_config.py").read_text()
    docker_scopes = re.search(r'"services": \["instructor"\],\s*"scopes": (\[[^\]]*\])', config)
    assert scopes == set(json.loads(docker_scopes.group(1)))


def test_no_egress_but_the_hub_and_dns():
    rules = load("values.yaml")["singleuser"]["networkPolicy"]
    assert rules["enabled"] and rules["egress"] == []
    assert {k for k, v in rules["egressAllowRules"].items() if v} == {"dnsPortsKubeSystemNamespace"}
    policy = load("networkpolicy.yaml")
    assert (policy["apiVersion"], policy["kind"]) == ("networking.k8s.io/v1", "NetworkPolicy")
    spec = policy["spec"]
    assert spec["policyTypes"] == ["Egress"]
    assert spec["podSelector"]["matchLabels"]["component"] == "singleuser-server"
    allowed = set()
    for rule in spec["egress"]:
        assert rule.get("to"), "an egress rule without 'to' allows every destination"
        for peer in rule["to"]:
            assert "ipBlock" not in peer
            target = peer.get("podSelector", {}).get("matchLabels", {}).get("component") or \
                peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
            allowed |= {(target, p["port"], p["protocol"]) for p in rule["ports"]}
    assert allowed == {("hub", 8081, "TCP"), ("kube-system", 53, "UDP"), ("kube-system", 53, "TCP")}
