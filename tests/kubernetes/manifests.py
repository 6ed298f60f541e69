"""The Kubernetes manifests, checked without a cluster, and handed to podman.

  manifests.py check FILE [--external-secret NAME]...
      every object of FILE (what `kubectl kustomize` printed) against the
      Kubernetes API's schema: an unknown field, a missing required one or a
      value of the wrong type is an error (the models of Debian's
      python3-kubernetes, made from the API's OpenAPI document); then what
      ties the objects together: selectors that match their pods, Services
      whose target ports exist, autoscalers and budgets that name a
      Deployment, ConfigMaps and Secrets that exist (NAME: a Secret made
      outside the manifests), and every service of services/list with its
      Deployment, Service, autoscaler and health probes; then the hardening
      every pod must have (`hardening` below: what the Pod Security
      Standard "restricted" asks and more), that every autoscaled
      Deployment is spread over nodes and has a disruption budget that
      fits its autoscaler's minimum, and that a StatefulSet's containers
      have a startup probe.

  manifests.py podman FILE OUTDIR PREFIX
      FILE as podman 4.3's `kube play` can run it, one file per workload in
      OUTDIR, and OUTDIR/plan.json (which pods, containers and probes):
      * podman runs Pods and Deployments (one pod a replica: NAME-pod-N)
        but not Jobs or StatefulSets, and gives an emptyDir a named volume
        of the volume's own name (shared by every pod that names it, across
        workloads too) filled with the image's directory: every workload
        becomes Pods of its template, a Deployment's named as podman names
        its replicas (NAME-pod-N), the Job's NAME, the StatefulSet's NAME-0
        with its claims; and each emptyDir a directory of that pod's own,
        empty and mode 0777 as the kubelet makes one (a hostPath in
        OUTDIR/emptydir/POD/VOLUME);
      * podman has no Services: a Service's name in a ConfigMap's value
        (host, host:port, a URL) becomes its pods' names, which podman's
        DNS answers (all of them, space-separated, in PL_UPSTREAM_*);
      * podman 4.3 writes a Secret's base64 text into the files of a secret
        volume instead of its bytes: each Secret becomes a ConfigMap of its
        decoded content, mounted the same way (items kept);
      * podman 4.3 publishes every containerPort on the host: the ports are
        left out (pods reach each other on the network; plan.json has them);
      * what podman ignores but the test checks by hand goes into
        plan.json: each container's user and group (pod-level or its own),
        its writable mounts, its startup probe and preStop hook, the pod's
        terminationGracePeriodSeconds;
      * every name gets PREFIX, so that nothing collides with another run.
      Services, autoscalers, budgets, network policies and namespaces are
      left out: podman has none (`check` validates them).

Every Deployment's `replicas` is kept: the test overlay sets them.
"""
import base64
import copy
import json
import pathlib
import re
import shutil
import sys

import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]

# (apiVersion, kind) -> the model of python3-kubernetes 22.6 (Kubernetes
# 1.22). autoscaling/v2 came in 1.23 as v2beta2 unchanged (v2beta2 was
# removed in 1.26): its schema is V2beta2's.
KINDS = {
    ("v1", "ConfigMap"): "V1ConfigMap",
    ("v1", "Secret"): "V1Secret",
    ("v1", "Service"): "V1Service",
    ("v1", "Namespace"): "V1Namespace",
    ("v1", "PersistentVolumeClaim"): "V1PersistentVolumeClaim",
    ("v1", "Pod"): "V1Pod",
    ("apps/v1", "Deployment"): "V1Deployment",
    ("apps/v1", "StatefulSet"): "V1StatefulSet",
    ("batch/v1", "Job"): "V1Job",
    ("autoscaling/v2", "HorizontalPodAutoscaler"): "V2beta2HorizontalPodAutoscaler",
    ("policy/v1", "PodDisruptionBudget"): "V1PodDisruptionBudget",
    ("networking.k8s.io/v1", "NetworkPolicy"): "V1NetworkPolicy",
}
WORKLOADS = ("Deployment", "StatefulSet", "Job")


def load(path):
    return [d for d in yaml.safe_load_all(pathlib.Path(path).read_text()) if d]


def services_list():
    return [s for s in (ROOT / "services/list").read_text().split() if s]


# --- check ---------------------------------------------------------------------------------


class Schema:
    def __init__(self):
        import kubernetes.client as client  # Debian's python3-kubernetes
        self.client = client
        self.errors = []

    def error(self, where, msg):
        self.errors.append(f"{where}: {msg}")

    def value(self, where, typ, v):
        if typ == "object":  # int-or-string, quantities, free-form
            return
        if typ.startswith("list["):
            if not isinstance(v, list):
                return self.error(where, f"expected a list, got {type(v).__name__}")
            for i, item in enumerate(v):
                self.value(f"{where}[{i}]", typ[5:-1], item)
            return
        if typ.startswith("dict("):
            if not isinstance(v, dict):
                return self.error(where, f"expected a map, got {type(v).__name__}")
            inner = typ[5:-1].split(", ", 1)[1]
            for k, item in v.items():
                self.value(f"{where}.{k}", inner, item)
            return
        simple = {"str": str, "int": int, "bool": bool, "float": (int, float), "datetime": str, "date": str}
        if typ in simple:
            ok = isinstance(v, simple[typ]) and not (typ in ("int", "float") and isinstance(v, bool))
            if not ok:
                self.error(where, f"expected {typ}, got {type(v).__name__} {v!r}")
            return
        self.model(where, getattr(self.client, typ), v)

    def model(self, where, klass, v):
        if not isinstance(v, dict):
            return self.error(where, f"expected an object ({klass.__name__}), got {type(v).__name__}")
        by_json = {j: p for p, j in klass.attribute_map.items()}
        for k, item in v.items():
            if k not in by_json:
                self.error(f"{where}.{k}", f"unknown field (not in {klass.__name__})")
                continue
            if item is not None:
                self.value(f"{where}.{k}", klass.openapi_types[by_json[k]], item)
        # the model's setters refuse a required field that is missing
        try:
            klass(**{by_json[k]: (item if item is not None else "x") for k, item in v.items() if k in by_json})
        except ValueError as e:
            self.error(where, str(e))
        except TypeError:
            pass


def labels_match(selector, labels):
    return all(labels.get(k) == v for k, v in (selector or {}).items())


def pod_spec(obj):
    return obj["spec"]["template"]["spec"] if obj["kind"] in WORKLOADS else obj["spec"]


def check(path, external_secrets):
    docs = load(path)
    schema = Schema()
    for d in docs:
        where = f"{d.get('kind')}/{(d.get('metadata') or {}).get('name')}"
        klass = KINDS.get((d.get("apiVersion"), d.get("kind")))
        if klass is None:
            schema.error(where, f"no schema known here for {d.get('apiVersion')} {d.get('kind')}")
            continue
        schema.model(where, getattr(schema.client, klass), d)
    err = schema.error
    if schema.errors:  # what ties them together is looked at in valid objects only
        return report(path, docs, schema.errors)
    by_kind = {}
    for d in docs:
        by_kind.setdefault(d["kind"], {})[d["metadata"]["name"]] = d
    workloads = [d for d in docs if d["kind"] in WORKLOADS]
    configmaps = set(by_kind.get("ConfigMap", {}))
    secrets = set(by_kind.get("Secret", {})) | set(external_secrets)

    def missing_key(where, what, secret, key):
        """A key a pod needs from a Secret of these manifests that the Secret
        lacks: the pod would wait in ContainerCreating on a cluster. (A
        Secret made outside, --external-secret, cannot be looked into.)"""
        sec = by_kind.get("Secret", {}).get(secret)
        if sec is not None and key not in (sec.get("data") or {}) and key not in (sec.get("stringData") or {}):
            err(where, f"{what} needs key {key} of Secret {secret}, which has no such key")

    for w in workloads:
        where = f"{w['kind']}/{w['metadata']['name']}"
        tmpl_labels = w["spec"]["template"].get("metadata", {}).get("labels", {})
        if w["kind"] != "Job" and not labels_match(w["spec"]["selector"].get("matchLabels"), tmpl_labels):
            err(where, "its selector does not match its pod template's labels")
        spec = pod_spec(w)
        volumes = {v["name"]: v for v in spec.get("volumes", [])}
        claims = {c["metadata"]["name"] for c in w["spec"].get("volumeClaimTemplates", [])}
        for c in spec.get("containers", []) + spec.get("initContainers", []):
            for ref in c.get("envFrom", []):
                if "configMapRef" in ref and ref["configMapRef"]["name"] not in configmaps:
                    err(where, f"envFrom names ConfigMap {ref['configMapRef']['name']}, which is not there")
                if "secretRef" in ref and ref["secretRef"]["name"] not in secrets:
                    err(where, f"envFrom names Secret {ref['secretRef']['name']}, which is not there")
            for m in c.get("volumeMounts", []):
                if m["name"] not in volumes and m["name"] not in claims:
                    err(where, f"container {c['name']} mounts {m['name']}, which is no volume")
        for v in volumes.values():
            if "configMap" in v and v["configMap"]["name"] not in configmaps:
                err(where, f"volume {v['name']} names ConfigMap {v['configMap']['name']}, which is not there")
            if "secret" in v and v["secret"]["secretName"] not in secrets:
                err(where, f"volume {v['name']} names Secret {v['secret']['secretName']}, which is not there")
            if "secret" in v and "optional" not in v["secret"]:
                err(where, f"volume {v['name']}: say `optional:` (podman 4.3's kube play crashes without it)")
            if "secret" in v and not v["secret"].get("optional"):
                for item in v["secret"].get("items", []):
                    missing_key(where, f"volume {v['name']}", v["secret"]["secretName"], item["key"])
        for c in spec.get("containers", []) + spec.get("initContainers", []):
            for e in c.get("env", []):
                ref = (e.get("valueFrom") or {}).get("secretKeyRef")
                if ref and not ref.get("optional"):
                    missing_key(where, f"container {c['name']}'s {e['name']}", ref["name"], ref["key"])

    def pods_of(selector):
        return [w for w in workloads if w["kind"] != "Job"
                and labels_match(selector, w["spec"]["template"].get("metadata", {}).get("labels", {}))]

    for name, s in by_kind.get("Service", {}).items():
        targets = pods_of(s["spec"].get("selector"))
        if not targets:
            err(f"Service/{name}", "its selector matches no workload's pods")
        for p in s["spec"]["ports"]:
            t = p.get("targetPort", p["port"])
            for w in targets:
                ports = [cp for c in pod_spec(w)["containers"] for cp in c.get("ports", [])]
                if not any(cp.get("name") == t or cp["containerPort"] == t for cp in ports):
                    err(f"Service/{name}", f"targetPort {t} is no port of {w['kind']}/{w['metadata']['name']}")
    for name, h in by_kind.get("HorizontalPodAutoscaler", {}).items():
        ref = h["spec"]["scaleTargetRef"]
        if ref["name"] not in by_kind.get(ref["kind"], {}):
            err(f"HorizontalPodAutoscaler/{name}", f"scales {ref['kind']}/{ref['name']}, which is not there")
        target = by_kind.get(ref["kind"], {}).get(ref["name"])
        if target and not all("requests" in c.get("resources", {}) and "cpu" in c["resources"]["requests"]
                              for c in pod_spec(target)["containers"]):
            err(f"HorizontalPodAutoscaler/{name}", "its target's containers do not all request CPU (a utilization target needs it)")
        if h["spec"].get("minReplicas", 1) > h["spec"]["maxReplicas"]:
            err(f"HorizontalPodAutoscaler/{name}", "minReplicas above maxReplicas")
    for name, b in by_kind.get("PodDisruptionBudget", {}).items():
        if not pods_of(b["spec"]["selector"].get("matchLabels")):
            err(f"PodDisruptionBudget/{name}", "its selector matches no workload's pods")
    for name, n in by_kind.get("NetworkPolicy", {}).items():
        if not pods_of(n["spec"]["podSelector"].get("matchLabels")):
            err(f"NetworkPolicy/{name}", "its podSelector matches no workload's pods")

    for svc in services_list():
        d = by_kind.get("Deployment", {}).get(svc)
        if d is None:
            err(svc, "services/list names it, but there is no Deployment of it")
            continue
        for kind in ("Service", "HorizontalPodAutoscaler", "PodDisruptionBudget"):
            if svc not in by_kind.get(kind, {}):
                err(svc, f"services/list names it, but there is no {kind} of it")
        c = pod_spec(d)["containers"][0]
        env = {e["name"]: e.get("value") for e in c.get("env", [])}
        if env.get("PL_SERVICE") != svc:
            err(svc, f"its Deployment runs PL_SERVICE={env.get('PL_SERVICE')}")
        for probe in ("readinessProbe", "livenessProbe"):
            cmd = c.get(probe, {}).get("exec", {}).get("command", [])
            if not cmd or not cmd[0].endswith("/healthcheck.sh"):
                err(svc, f"its {probe} is not the health check (GET /api/{svc}/health): {cmd}")
        inits = pod_spec(d).get("initContainers", [])
        if not any((i.get("command") or [""])[0].endswith("/wait-migrations.sh") for i in inits):
            err(svc, "its pods do not wait for their migrations (an init container running wait-migrations.sh)")

    for w in workloads:
        hardening(f"{w['kind']}/{w['metadata']['name']}", pod_spec(w), err)
        if w["kind"] == "StatefulSet":
            for c in pod_spec(w)["containers"]:
                if "startupProbe" not in c:
                    err(f"StatefulSet/{w['metadata']['name']}", f"container {c['name']} has no startupProbe "
                        "(a slow first start would be killed by its liveness probe)")
    availability(by_kind, pods_of, err)
    return report(path, docs, schema.errors)


def security(spec, c):
    """The container's effective securityContext: the pod's, overridden by its own."""
    eff = dict(spec.get("securityContext") or {})
    eff.update(c.get("securityContext") or {})
    return eff


# the volume types the Pod Security Standard "restricted" allows (those used here)
RESTRICTED_VOLUMES = {"secret", "configMap", "emptyDir", "persistentVolumeClaim", "projected", "downwardAPI"}


def hardening(where, spec, err):
    """Every pod: no service account token, and every container: not root
    (an explicit uid and gid, runAsNonRoot), no privilege escalation, no
    capability, the runtime's default seccomp profile, a read-only root;
    fsGroup set (the secret files are 0440); only volume types that the
    "restricted" Pod Security Standard allows."""
    if spec.get("automountServiceAccountToken") is not False:
        err(where, "automountServiceAccountToken is not false (no pod here calls the Kubernetes API)")
    if not (spec.get("securityContext") or {}).get("fsGroup"):
        err(where, "no fsGroup in the pod's securityContext")
    for v in spec.get("volumes", []):
        kind = next((k for k in v if k != "name"), None)
        if kind not in RESTRICTED_VOLUMES:
            err(where, f"volume {v['name']} is a {kind}, which the restricted Pod Security Standard refuses")
    for c in spec.get("containers", []) + spec.get("initContainers", []):
        sc, own = security(spec, c), c.get("securityContext") or {}
        w = f"{where} container {c['name']}"
        if sc.get("runAsNonRoot") is not True:
            err(w, "runAsNonRoot is not true")
        for k in ("runAsUser", "runAsGroup"):
            if not isinstance(sc.get(k), int) or sc[k] <= 0:
                err(w, f"{k} is not set to a uid/gid other than 0 ({sc.get(k)!r})")
        if own.get("allowPrivilegeEscalation") is not False:
            err(w, "allowPrivilegeEscalation is not false")
        if own.get("privileged"):
            err(w, "privileged")
        caps = own.get("capabilities") or {}
        if "ALL" not in (caps.get("drop") or []):
            err(w, "capabilities do not drop ALL")
        if caps.get("add"):
            err(w, f"capabilities add {caps['add']}")
        if (sc.get("seccompProfile") or {}).get("type") != "RuntimeDefault":
            err(w, "seccompProfile is not RuntimeDefault")
        if own.get("readOnlyRootFilesystem") is not True:
            err(w, "readOnlyRootFilesystem is not true")


def spread_on_hostname(spec, labels):
    """Whether the pods are spread over nodes: a topology spread constraint
    or a (preferred or required) pod anti-affinity on the hostname, whose
    selector matches the pods themselves."""
    for t in spec.get("topologySpreadConstraints", []):
        if t["topologyKey"] == "kubernetes.io/hostname" and \
                labels_match((t.get("labelSelector") or {}).get("matchLabels"), labels):
            return True
    anti = (spec.get("affinity") or {}).get("podAntiAffinity") or {}
    terms = [t["podAffinityTerm"] for t in anti.get("preferredDuringSchedulingIgnoredDuringExecution", [])]
    terms += anti.get("requiredDuringSchedulingIgnoredDuringExecution", [])
    return any(t["topologyKey"] == "kubernetes.io/hostname" and
               labels_match((t.get("labelSelector") or {}).get("matchLabels"), labels) for t in terms)


def availability(by_kind, pods_of, err):
    """Every autoscaled Deployment spread over nodes, with a budget that
    lets a drain go on at the autoscaler's minimum and keeps one pod."""
    for name, h in by_kind.get("HorizontalPodAutoscaler", {}).items():
        ref = h["spec"]["scaleTargetRef"]
        d = by_kind.get(ref["kind"], {}).get(ref["name"])
        if d is None or d["kind"] != "Deployment":
            continue
        where = f"Deployment/{d['metadata']['name']}"
        labels = d["spec"]["template"].get("metadata", {}).get("labels", {})
        if not spread_on_hostname(d["spec"]["template"]["spec"], labels):
            err(where, "not spread over nodes (topologySpreadConstraints or podAntiAffinity on kubernetes.io/hostname)")
        budgets = [b for b in by_kind.get("PodDisruptionBudget", {}).values()
                   if d in pods_of(b["spec"]["selector"].get("matchLabels"))]
        if len(budgets) != 1:
            err(where, f"{len(budgets)} PodDisruptionBudgets select its pods (one is wanted)")
            continue
        b, low = budgets[0]["spec"], h["spec"].get("minReplicas", 1)
        if low < 2:
            err(where, f"its autoscaler's minReplicas is {low}: a drain or a rolling update leaves no pod")
        if "minAvailable" in b and not (isinstance(b["minAvailable"], int) and 1 <= b["minAvailable"] < low):
            err(where, f"its budget's minAvailable {b['minAvailable']!r} is not from 1 to minReplicas - 1 ({low - 1}): "
                       "a drain would stop, or no pod be kept")
        if "maxUnavailable" in b and not (isinstance(b["maxUnavailable"], int) and 1 <= b["maxUnavailable"] < low):
            err(where, f"its budget's maxUnavailable {b['maxUnavailable']!r} is not from 1 to minReplicas - 1 ({low - 1})")


def report(path, docs, errors):
    for e in errors:
        print(f"{path}: {e}", file=sys.stderr)
    kinds = sorted({d.get("kind", "?") for d in docs})
    print(f"{path}: {len(docs)} objects ({', '.join(kinds)}): "
          f"{'ok' if not errors else str(len(errors)) + ' errors'}")
    return 1 if errors else 0


# --- podman --------------------------------------------------------------------------------


def podman(path, outdir, prefix):
    docs = load(path)
    out = pathlib.Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    by_kind = {}
    for d in docs:
        by_kind.setdefault(d["kind"], {})[d["metadata"]["name"]] = d
    workloads = [d for d in docs if d["kind"] in WORKLOADS]

    def pods(w):
        """The pod names podman gives a workload's replicas."""
        n = w["metadata"]["name"]
        if w["kind"] == "Deployment":
            return [f"{prefix}{n}-pod-{i}" for i in range(w["spec"].get("replicas", 1))]
        if w["kind"] == "StatefulSet":
            return [f"{prefix}{n}-0"]
        return [f"{prefix}{n}"]

    # each Service's name -> the pods it selects
    service_pods = {}
    for name, s in by_kind.get("Service", {}).items():
        sel = s["spec"].get("selector", {})
        service_pods[name] = [p for w in workloads if w["kind"] != "Job"
                              and labels_match(sel, w["spec"]["template"].get("metadata", {}).get("labels", {}))
                              for p in pods(w)]

    def rewrite(key, value):
        for name, names in service_pods.items():
            if not names:
                continue
            if key.endswith("_HOST") and value == name:
                return names[0]
            if key.startswith("PL_UPSTREAM_"):
                value = re.sub(rf"(?<![\w.-]){re.escape(name)}:(\d+)",
                               lambda m: " ".join(f"{p}:{m.group(1)}" for p in names), value)
            else:
                value = re.sub(rf"(?<![\w.-]){re.escape(name)}(?=:\d)", names[0], value)
        return value

    configmaps = []
    for name, c in by_kind.get("ConfigMap", {}).items():
        data = {k: rewrite(k, v) for k, v in (c.get("data") or {}).items()}
        configmaps.append({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": prefix + name}, "data": data})
    for name, s in by_kind.get("Secret", {}).items():
        data = {k: base64.b64decode(v).decode() for k, v in (s.get("data") or {}).items()}
        data.update(s.get("stringData") or {})
        configmaps.append({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": prefix + name}, "data": data})

    plan = {"prefix": prefix, "configmaps": [c["metadata"]["name"] for c in configmaps], "workloads": {}}
    (out / "configmaps.yaml").write_text(yaml.safe_dump_all(configmaps, sort_keys=False))
    for w in workloads:
        name = w["metadata"]["name"]
        tmpl = copy.deepcopy(w["spec"]["template"])
        spec = tmpl["spec"]
        for c in spec.get("containers", []) + spec.get("initContainers", []):
            for ref in c.get("envFrom", []):
                if "configMapRef" in ref:
                    ref["configMapRef"]["name"] = prefix + ref["configMapRef"]["name"]
        ports = {c["name"]: c.pop("ports", []) for c in spec.get("containers", [])}
        # podman 4.3 restarts an init container that exited 0 under the
        # pod's restartPolicy Always, until kube play fails removing it: the
        # test runs the init containers' wait in the running container instead
        inits = [c["name"] for c in spec.pop("initContainers", [])]
        claims = []
        for v in spec.get("volumes", []):
            if "configMap" in v:
                v["configMap"]["name"] = prefix + v["configMap"]["name"]
            if "secret" in v:
                sec = v.pop("secret")
                v["configMap"] = {"name": prefix + sec["secretName"], "optional": sec.get("optional", False)}
                if "items" in sec:
                    v["configMap"]["items"] = sec["items"]
        for ct in w["spec"].get("volumeClaimTemplates", []):
            claim = f"{prefix}{ct['metadata']['name']}-{name}-0"
            claims.append({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": claim},
                           "spec": ct["spec"]})
            spec.setdefault("volumes", []).append({"name": ct["metadata"]["name"],
                                                   "persistentVolumeClaim": {"claimName": claim}})
        if w["kind"] == "Job":
            spec["restartPolicy"] = "Never"  # a failure is seen, not retried
        else:
            spec.setdefault("restartPolicy", "Always")
        objs = []
        for pod in pods(w):
            pspec = copy.deepcopy(spec)
            for v in pspec.get("volumes", []):
                if "emptyDir" in v:
                    del v["emptyDir"]
                    d = out / "emptydir" / pod / v["name"]
                    shutil.rmtree(d, ignore_errors=True)
                    d.mkdir(parents=True)
                    d.chmod(0o777)
                    v["hostPath"] = {"path": str(d), "type": "Directory"}
            objs.append({"apiVersion": "v1", "kind": "Pod",
                         "metadata": {"name": pod, "labels": tmpl.get("metadata", {}).get("labels", {})},
                         "spec": pspec})
        # the ConfigMaps it names go in its file: podman's --configmap
        # files serve environment variables, not volumes
        names = {ref["configMapRef"]["name"] for c in spec.get("containers", []) + spec.get("initContainers", [])
                 for ref in c.get("envFrom", []) if "configMapRef" in ref}
        names |= {v["configMap"]["name"] for v in spec.get("volumes", []) if "configMap" in v}
        mine = [c for c in configmaps if c["metadata"]["name"] in names]
        (out / f"{name}.yaml").write_text(yaml.safe_dump_all(mine + claims + objs, sort_keys=False))
        writable = {v["name"] for v in spec.get("volumes", [])
                    if "emptyDir" in v or "persistentVolumeClaim" in v}

        def container_plan(c):
            sc = security(spec, c)
            return {"name": c["name"], "ports": ports[c["name"]],
                    "startupProbe": c.get("startupProbe"), "readinessProbe": c.get("readinessProbe"),
                    "livenessProbe": c.get("livenessProbe"), "preStop": (c.get("lifecycle") or {}).get("preStop"),
                    "runAsUser": sc.get("runAsUser"), "runAsGroup": sc.get("runAsGroup"),
                    "readOnlyRootFilesystem": bool(sc.get("readOnlyRootFilesystem")),
                    "writable": [m["mountPath"] for m in c.get("volumeMounts", [])
                                 if m["name"] in writable and not m.get("readOnly")]}
        plan["workloads"][name] = {
            "kind": w["kind"], "file": str(out / f"{name}.yaml"), "pods": pods(w),
            "claims": [c["metadata"]["name"] for c in claims],
            "terminationGracePeriodSeconds": spec.get("terminationGracePeriodSeconds", 30),
            "containers": [container_plan(c) for c in spec["containers"]],
            "initContainers": inits,
        }
    plan["services"] = service_pods
    (out / "plan.json").write_text(json.dumps(plan, indent=1))
    print(f"{outdir}: {len(configmaps)} ConfigMaps, " +
          ", ".join(f"{n} ({len(p['pods'])} pod{'s' if len(p['pods']) > 1 else ''})" for n, p in plan["workloads"].items()))
    return 0


def main(argv):
    if len(argv) >= 2 and argv[0] == "check":
        ext = [argv[i + 1] for i, a in enumerate(argv) if a == "--external-secret"]
        files = [a for i, a in enumerate(argv[1:], 1) if a != "--external-secret" and argv[i - 1] != "--external-secret"]
        return max(check(f, ext) for f in files)
    if len(argv) == 4 and argv[0] == "podman":
        return podman(*argv[1:])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
