"""test_manifests.py: the Kubernetes manifests (manifests/), the config they carry (conf/kubernetes.yaml) and the
Dockerfile agree with each other and with Kubernetes' API schema.

- Schema: every manifest is validated against the Kubernetes OpenAPI (swagger 2.0) document, ../shared/k8s/swagger.json
  beside the repository (or $HYDRANT_K8S_SWAGGER), with python3-jsonschema and python3-yaml (Debian). Unknown fields are
  errors. When the document is absent (a clone of the project alone) those tests are SKIPPED, and say so.
- Kustomization: every resource listed exists, renders (images applied) and validates; names and references line up
  (Service and PDB selectors, named ports, the HPA target, the ConfigMap and Secrets the pods read).
- Deployment invariants: the config is mounted as a directory (no subPath), probes, securityContext, the grace period
  against server.drain_delay + server.timeouts.shutdown, the environment the config requires.
- `hydrant check` ($HYDRANT_BIN) accepts conf/kubernetes.yaml with the Deployment's environment and dummy TLS files.

Run: HYDRANT_BIN=build/debug/hydrant python3 tests/integration/test_manifests.py
"""

import copy
import json
import os
import re
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402  (re-runs this file under Debian's python3 when needed)

try:
    import yaml
except ImportError:  # pragma: no cover
    sys.exit("test_manifests.py needs PyYAML: apt-get install python3-yaml")

REPO = harness.REPO
MANIFESTS = os.path.join(REPO, "manifests")
K8S_CONF = os.path.join(REPO, "conf", "kubernetes.yaml")
DOCKERFILE = os.path.join(REPO, "Dockerfile")
SWAGGER = os.environ.get("HYDRANT_K8S_SWAGGER") or os.path.join(os.path.dirname(REPO), "shared", "k8s", "swagger.json")
EXAMPLE_ONLY = {"secret.example.yaml"}  # manifests that are deliberately not kustomize resources

UID = 10001
CONFIG_DIR = "/etc/hydrant"
CONFIG_KEY = "hydrant.yaml"
DRAIN_DELAY_DEFAULT_MS = 5000  # server.drain_delay's default
SHUTDOWN_DEFAULT_MS = 20000  # server.timeouts.shutdown's default


# ---- loading -------------------------------------------------------------------------------------------------------------


def load_docs(path):
    """The non-empty YAML documents of a file, each tagged with where it came from."""
    with open(path) as f:
        docs = [d for d in yaml.safe_load_all(f) if d is not None]
    return [(os.path.relpath(path, REPO), d) for d in docs]


def manifest_files():
    return sorted(f for f in os.listdir(MANIFESTS) if f.endswith((".yaml", ".yml")) and f != "kustomization.yaml")


def kustomization():
    with open(os.path.join(MANIFESTS, "kustomization.yaml")) as f:
        return yaml.safe_load(f)


def render():
    """What `kubectl kustomize manifests/` would give for this kustomization: the listed resources in order, with the
    `images` overrides applied. Only the features the kustomization uses are implemented; the test that checks the
    kustomization's keys keeps it that way."""
    k = kustomization()
    images = {i["name"]: i for i in k.get("images", [])}
    out = []
    for res in k.get("resources", []):
        for where, doc in load_docs(os.path.join(MANIFESTS, res)):
            doc = copy.deepcopy(doc)
            for c in pod_containers(doc):
                name, _, tag = c["image"].partition(":")
                if name in images:
                    i = images[name]
                    c["image"] = "%s:%s" % (i.get("newName", name), i.get("newTag", tag or "latest"))
            out.append((where, doc))
    return out


def pod_containers(doc):
    spec = doc.get("spec", {}).get("template", {}).get("spec", {}) if doc.get("kind") == "Deployment" else {}
    return list(spec.get("initContainers", [])) + list(spec.get("containers", []))


def find(docs, kind, name=None):
    hits = [d for _, d in docs if d.get("kind") == kind and (name is None or d["metadata"]["name"] == name)]
    return hits


def parse_duration_ms(s):
    """hydrant's duration syntax (docs/configuration.md): 0, or <digits><h|m|s|ms> terms."""
    s = str(s)
    if s == "0":
        return 0
    m = re.fullmatch(r"(?:(\d+)h)?(?:(\d+)m(?!s))?(?:(\d+)s)?(?:(\d+)ms)?", s)
    if not m or not any(m.groups()):
        raise ValueError("not a duration: %r" % s)
    h, mi, se, ms = (int(x) if x else 0 for x in m.groups())
    return ((h * 60 + mi) * 60 + se) * 1000 + ms


def k8s_config():
    with open(K8S_CONF) as f:
        return yaml.safe_load(f)


def interpolation_default(value):
    """`/x` for "${VAR:-/x}", the value itself when it has no ${}."""
    m = re.fullmatch(r"\$\{[A-Za-z_][A-Za-z0-9_]*:-([^}]*)\}", str(value))
    return m.group(1) if m else str(value)


# ---- the schema ----------------------------------------------------------------------------------------------------------

QUANTITY = r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+|[KMGTPE]i|[numkMGTPE])?$"


def strict_definitions(definitions):
    """A copy of the swagger definitions that jsonschema (draft 4) can check strictly:
    - a schema with `properties` and no `additionalProperties` gets additionalProperties: false (unknown fields are
      errors), unless it says x-kubernetes-preserve-unknown-fields;
    - IntOrString (format int-or-string, typed "string" in swagger) accepts an integer or a string;
    - Quantity (typed "string") accepts a number or a quantity string such as 500m, 2, 256Mi."""

    def fix(schema):
        """One schema node; walks only the keywords that hold schemas (a property may well be named "format")."""
        if not isinstance(schema, dict):
            return schema
        s = dict(schema)
        if "properties" in s:
            s["properties"] = {name: fix(sub) for name, sub in s["properties"].items()}
        if isinstance(s.get("additionalProperties"), dict):
            s["additionalProperties"] = fix(s["additionalProperties"])
        if isinstance(s.get("items"), dict):
            s["items"] = fix(s["items"])
        elif isinstance(s.get("items"), list):
            s["items"] = [fix(sub) for sub in s["items"]]
        for kw in ("allOf", "anyOf", "oneOf"):
            if kw in s:
                s[kw] = [fix(sub) for sub in s[kw]]
        if s.get("format") == "int-or-string" or s.get("x-kubernetes-int-or-string"):
            s.pop("format", None)
            s["type"] = ["integer", "string"]
        if "properties" in s and "additionalProperties" not in s and not s.get("x-kubernetes-preserve-unknown-fields"):
            s["additionalProperties"] = False
        return s

    defs = {name: fix(d) for name, d in definitions.items()}
    defs["io.k8s.apimachinery.pkg.api.resource.Quantity"] = {
        "anyOf": [{"type": "number"}, {"type": "string", "pattern": QUANTITY}]}
    return defs


class Schema:
    _instance = None

    @classmethod
    def get(cls):
        if cls._instance is None:
            cls._instance = cls(SWAGGER)
        return cls._instance

    def __init__(self, path):
        try:
            import jsonschema
        except ImportError:
            raise AssertionError("python3-jsonschema is needed to validate manifests: apt-get install python3-jsonschema")
        self.jsonschema = jsonschema
        with open(path) as f:
            doc = json.load(f)
        self.version = ""
        vfile = os.path.join(os.path.dirname(path), "VERSION")
        if os.path.exists(vfile):
            with open(vfile) as f:
                self.version = f.read().strip()
        self.definitions = strict_definitions(doc["definitions"])
        self.by_gvk = {}
        for name, d in doc["definitions"].items():
            for gvk in d.get("x-kubernetes-group-version-kind", []):
                self.by_gvk[(gvk["group"], gvk["version"], gvk["kind"])] = name

    def definition_for(self, obj):
        api = obj.get("apiVersion", "")
        group, _, version = api.rpartition("/")
        return self.by_gvk.get((group, version, obj.get("kind")))

    def errors(self, obj):
        """A list of messages, empty when obj is valid."""
        name = self.definition_for(obj)
        if name is None:
            return ["no schema for apiVersion %r kind %r" % (obj.get("apiVersion"), obj.get("kind"))]
        schema = {"$ref": "#/definitions/" + name, "definitions": self.definitions}
        v = self.jsonschema.Draft4Validator(schema)
        out = []
        for e in sorted(v.iter_errors(obj), key=lambda e: list(e.absolute_path)):
            path = ".".join(str(p) for p in e.absolute_path) or "(top)"
            out.append("%s: %s" % (path, e.message))
        return out


HAVE_SWAGGER = os.path.exists(SWAGGER)
SKIP_SCHEMA = "SKIPPED schema validation: %s not found (the Kubernetes OpenAPI document lives in shared/k8s beside " \
              "the repository; set HYDRANT_K8S_SWAGGER to use another copy)" % SWAGGER
if not HAVE_SWAGGER:
    print("test_manifests: " + SKIP_SCHEMA, file=sys.stderr)


@unittest.skipUnless(HAVE_SWAGGER, SKIP_SCHEMA)
class SchemaValidatorTest(unittest.TestCase):
    """The validator itself is strict: a manifest with mistakes must not pass (so a pass means something)."""

    def setUp(self):
        self.s = Schema.get()

    def test_unknown_field_is_an_error(self):
        d = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x"},
             "spec": {"replica": 3, "selector": {"matchLabels": {"a": "b"}},
                      "template": {"metadata": {"labels": {"a": "b"}},
                                   "spec": {"containers": [{"name": "c", "image": "i", "imagePullPolicy": "IfNotPresent",
                                                            "readinessProbe": {"httpGet": {"path": "/", "port": 1},
                                                                               "periodSecond": 5}}]}}}}
        errs = "\n".join(self.s.errors(d))
        self.assertIn("spec: Additional properties are not allowed ('replica' was unexpected)", errs)
        self.assertIn("periodSecond", errs)

    def test_types_and_required(self):
        d = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "x"},
             "spec": {"ports": [{"port": "80", "targetPort": 8080}]}}
        errs = "\n".join(self.s.errors(d))
        self.assertIn("spec.ports.0.port: '80' is not of type 'integer'", errs)
        d["spec"]["ports"] = [{"targetPort": "http"}]
        self.assertIn("'port' is a required property", "\n".join(self.s.errors(d)))

    def test_int_or_string_and_quantity(self):
        for target in (8080, "http"):
            d = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "x"},
                 "spec": {"ports": [{"port": 80, "targetPort": target}]}}
            self.assertEqual(self.s.errors(d), [], target)
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x"},
               "spec": {"containers": [{"name": "c", "image": "i",
                                        "resources": {"limits": {"cpu": 2, "memory": "256Mi"},
                                                      "requests": {"cpu": "500m", "memory": "64Mi"}}}]}}
        self.assertEqual(self.s.errors(pod), [])
        pod["spec"]["containers"][0]["resources"]["limits"]["cpu"] = "2 cores"
        self.assertIn("resources.limits.cpu", "\n".join(self.s.errors(pod)))

    def test_unknown_kind(self):
        self.assertEqual(self.s.errors({"apiVersion": "apps/v1", "kind": "Deploymnet"}),
                         ["no schema for apiVersion 'apps/v1' kind 'Deploymnet'"])


@unittest.skipUnless(HAVE_SWAGGER, SKIP_SCHEMA)
class SchemaTest(unittest.TestCase):
    """Every manifest file, listed in the kustomization or not, against the API schema."""

    def test_every_manifest_is_valid(self):
        s = Schema.get()
        print("\n  schema: %s (%s)" % (SWAGGER, s.version or "no VERSION file"), file=sys.stderr)
        problems = []
        n = 0
        for f in manifest_files():
            for where, doc in load_docs(os.path.join(MANIFESTS, f)):
                n += 1
                for e in s.errors(doc):
                    problems.append("%s: %s %s: %s" % (where, doc.get("kind"), doc.get("metadata", {}).get("name"), e))
        self.assertGreaterEqual(n, 7, "expected at least 7 objects in manifests/")
        self.assertEqual(problems, [], "\n" + "\n".join(problems))

    def test_rendered_kustomization_is_valid(self):
        s = Schema.get()
        problems = []
        for where, doc in render():
            problems += ["%s: %s" % (where, e) for e in s.errors(doc)]
        self.assertEqual(problems, [], "\n" + "\n".join(problems))


class KustomizationTest(unittest.TestCase):
    def test_keys_and_resources(self):
        k = kustomization()
        self.assertEqual(k.get("apiVersion"), "kustomize.config.k8s.io/v1beta1")
        self.assertEqual(k.get("kind"), "Kustomization")
        # the keys render() implements; anything else would need kubectl to render faithfully
        self.assertLessEqual(set(k), {"apiVersion", "kind", "resources", "images"}, "kustomization.yaml uses keys this "
                             "test does not render: extend render() first")
        for i in k.get("images", []):
            self.assertLessEqual(set(i), {"name", "newName", "newTag"}, i)
        resources = k["resources"]
        self.assertEqual(len(resources), len(set(resources)), "a resource is listed twice")
        for r in resources:
            self.assertTrue(os.path.isfile(os.path.join(MANIFESTS, r)), "kustomization lists a missing file: " + r)
        # every manifest is either a resource or a deliberate example
        self.assertEqual(sorted(set(manifest_files()) - set(resources)), sorted(EXAMPLE_ONLY))
        self.assertNotIn("secret.example.yaml", resources,
                         "the example Secret must not be a resource: an apply would overwrite the real credentials")

    def test_rendered_objects(self):
        docs = render()
        kinds = sorted(d["kind"] for _, d in docs)
        self.assertEqual(kinds, ["ConfigMap", "Deployment", "HorizontalPodAutoscaler", "PodDisruptionBudget",
                                 "Service"])
        names = [(d["kind"], d["metadata"]["name"]) for _, d in docs]
        self.assertEqual(len(names), len(set(names)), names)
        for _, d in docs:
            self.assertNotIn("namespace", d["metadata"], "namespaces are the user's choice (kubectl -n / kustomize)")
        (dep,) = find(docs, "Deployment")
        for c in pod_containers(dep):
            self.assertEqual(c["image"], "localhost/hydrant:dev", "the kustomization's images entry applies")

    def test_references_line_up(self):
        docs = render()
        (dep,) = find(docs, "Deployment", "hydrant")
        labels = dep["spec"]["template"]["metadata"]["labels"]
        sel = dep["spec"]["selector"]["matchLabels"]
        self.assertTrue(sel.items() <= labels.items(), "the Deployment's selector must match its pod labels")
        (svc,) = find(docs, "Service", "hydrant")
        self.assertTrue(svc["spec"]["selector"].items() <= labels.items(), "the Service selects no pod")
        (pdb,) = find(docs, "PodDisruptionBudget", "hydrant")
        self.assertTrue(pdb["spec"]["selector"]["matchLabels"].items() <= labels.items(), "the PDB selects no pod")
        (hpa,) = find(docs, "HorizontalPodAutoscaler", "hydrant")
        self.assertEqual(hpa["spec"]["scaleTargetRef"], {"apiVersion": "apps/v1", "kind": "Deployment",
                                                         "name": "hydrant"})
        self.assertEqual(hpa["spec"]["minReplicas"], dep["spec"]["replicas"])
        self.assertEqual([m["resource"]["name"] for m in hpa["spec"]["metrics"]], ["cpu"])

        main = dep["spec"]["template"]["spec"]["containers"][0]
        ports = {p["name"]: p["containerPort"] for p in main["ports"]}
        for p in svc["spec"]["ports"]:
            self.assertIn(p["targetPort"], ports, "Service port %s targets no named container port" % p["name"])

        # the ConfigMap and the Secrets the pods read exist (the Secrets in the example) with the keys they use
        secrets = {d["metadata"]["name"]: d for _, d in load_docs(os.path.join(MANIFESTS, "secret.example.yaml"))}
        for v in dep["spec"]["template"]["spec"]["volumes"]:
            if "configMap" in v:
                self.assertEqual(len(find(docs, "ConfigMap", v["configMap"]["name"])), 1, v)
            if "secret" in v:
                self.assertIn(v["secret"]["secretName"], secrets, v)
                self.assertEqual(secrets[v["secret"]["secretName"]]["type"], "kubernetes.io/tls")
        for c in pod_containers(dep):
            for e in c.get("env", []):
                ref = e.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    self.assertIn(ref["name"], secrets, e)
                    self.assertIn(ref["key"], secrets[ref["name"]]["stringData"], e)

    def test_prometheus_scrapes_the_admin_port(self):
        (dep,) = find(render(), "Deployment")
        ann = dep["spec"]["template"]["metadata"]["annotations"]
        main = dep["spec"]["template"]["spec"]["containers"][0]
        ports = {p["name"]: p["containerPort"] for p in main["ports"]}
        self.assertEqual(ann.get("prometheus.io/scrape"), "true")
        self.assertEqual(int(ann["prometheus.io/port"]), ports["admin"])
        self.assertEqual(ann.get("prometheus.io/path"), "/metrics")


class DeploymentTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        (cls.dep,) = find(render(), "Deployment", "hydrant")
        cls.pod = cls.dep["spec"]["template"]["spec"]
        cls.main = cls.pod["containers"][0]
        cls.conf = k8s_config()

    def test_replicas_and_rollout(self):
        self.assertEqual(self.dep["spec"]["replicas"], 3)
        self.assertEqual(self.dep["spec"]["strategy"], {"type": "RollingUpdate",
                                                        "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}})

    def test_config_mounted_as_a_directory(self):
        vols = {v["name"]: v for v in self.pod["volumes"]}
        for c in pod_containers(self.dep):
            mounts = c.get("volumeMounts", [])
            for m in mounts:
                self.assertNotIn("subPath", m, "%s: subPath mounts never see ConfigMap/Secret updates" % c["name"])
                self.assertNotIn("subPathExpr", m)
            cfg = [m for m in mounts if m["mountPath"] == CONFIG_DIR]
            self.assertEqual(len(cfg), 1, "%s: the ConfigMap must be mounted at %s" % (c["name"], CONFIG_DIR))
            self.assertTrue(cfg[0].get("readOnly"))
            self.assertIn("configMap", vols[cfg[0]["name"]])
            # nothing mounted inside the ConfigMap's directory (kubernetes/kubernetes#57421)
            for m in mounts:
                self.assertFalse(m["mountPath"].startswith(CONFIG_DIR + "/"), m)
            args = c.get("command", ["/hydrant", "serve"])[2:] + c.get("args", [])
            self.assertIn("-c", args, c["name"])
            self.assertEqual(args[args.index("-c") + 1], CONFIG_DIR + "/" + CONFIG_KEY)

    def test_configmap_carries_conf_kubernetes_yaml(self):
        (cm,) = find(render(), "ConfigMap", "hydrant")
        self.assertEqual(list(cm["data"]), [CONFIG_KEY])
        with open(K8S_CONF) as f:
            want = f.read()
        self.assertTrue(cm["data"][CONFIG_KEY] == want, "manifests/configmap.yaml data.%s differs from "
                        "conf/kubernetes.yaml: paste the file into it again (indented four spaces)" % CONFIG_KEY)

    def test_tls_secret_is_where_the_config_looks(self):
        mounts = {m["mountPath"]: m for m in self.main["volumeMounts"]}
        vols = {v["name"]: v for v in self.pod["volumes"]}
        tls = [l["tls"] for l in self.conf["server"]["listen"] if "tls" in l]
        self.assertEqual(len(tls), 1)
        for key, item in (("certificate", "tls.crt"), ("key", "tls.key")):
            path = interpolation_default(tls[0][key])
            self.assertTrue(os.path.isabs(path), path)
            d, base = os.path.split(path)
            self.assertIn(d, mounts, "%s is not on a mounted volume" % path)
            self.assertEqual(base, item)
            self.assertIn("secret", vols[mounts[d]["name"]])
        (v,) = [v for v in self.pod["volumes"] if "secret" in v]
        self.assertEqual(v["secret"]["defaultMode"] & 0o007, 0, "the TLS key must not be world-readable")

    def test_ports_match_the_config(self):
        ports = {p["name"]: p["containerPort"] for p in self.main["ports"]}
        plain = [l["port"] for l in self.conf["server"]["listen"] if "tls" not in l]
        tls = [l["port"] for l in self.conf["server"]["listen"] if "tls" in l]
        self.assertEqual(ports, {"http": plain[0], "https": tls[0], "admin": self.conf["server"]["admin"]["port"]})
        for l in self.conf["server"]["listen"] + [self.conf["server"]["admin"]]:
            self.assertEqual(l["host"], "0.0.0.0", "a pod's listeners must bind all addresses")

    def test_probes(self):
        routes = {r["path"]: r.get("handler") for r in self.conf["routes"]}
        self.assertEqual(routes.get("/health"), "health")
        self.assertEqual(routes.get("/ready"), "ready")
        names = {p["name"] for p in self.main["ports"]}
        want = {"startupProbe": "/health", "livenessProbe": "/health", "readinessProbe": "/ready"}
        for probe, path in want.items():
            self.assertIn(probe, self.main)
            get = self.main[probe]["httpGet"]
            self.assertEqual(get["path"], path, probe)
            self.assertIn(get["port"], names, probe)
        self.assertGreaterEqual(self.main["startupProbe"]["periodSeconds"] * self.main["startupProbe"]["failureThreshold"],
                                10, "give the server at least 10s to start")
        for c in self.pod.get("initContainers", []):
            for probe in want:
                self.assertNotIn(probe, c)

    def test_security_context(self):
        psc = self.pod.get("securityContext", {})
        self.assertEqual(psc.get("runAsNonRoot"), True)
        self.assertEqual(psc.get("runAsUser"), UID)
        self.assertEqual(psc.get("seccompProfile"), {"type": "RuntimeDefault"})
        self.assertIs(self.pod.get("automountServiceAccountToken"), False)
        # service links would inject <SERVICE>_PORT=tcp://...: a Service named "server" would set SERVER_PORT
        self.assertIs(self.pod.get("enableServiceLinks"), False)
        self.assertNotIn("hostNetwork", self.pod)
        for c in pod_containers(self.dep):
            sc = c.get("securityContext", {})
            self.assertEqual(sc.get("runAsNonRoot", psc.get("runAsNonRoot")), True, c["name"])
            self.assertEqual(sc.get("runAsUser", psc.get("runAsUser")), UID, c["name"])
            self.assertIs(sc.get("readOnlyRootFilesystem"), True, c["name"])
            self.assertIs(sc.get("allowPrivilegeEscalation"), False, c["name"])
            self.assertEqual(sc.get("capabilities"), {"drop": ["ALL"]}, c["name"])
            self.assertEqual(sc.get("seccompProfile", psc.get("seccompProfile")), {"type": "RuntimeDefault"}, c["name"])
            self.assertNotIn("privileged", sc)

    def test_grace_period_covers_drain(self):
        server = self.conf["server"]
        drain = parse_duration_ms(server["drain_delay"]) if "drain_delay" in server else DRAIN_DELAY_DEFAULT_MS
        shutdown = server.get("timeouts", {}).get("shutdown")
        shutdown = parse_duration_ms(shutdown) if shutdown is not None else SHUTDOWN_DEFAULT_MS
        grace = self.pod["terminationGracePeriodSeconds"] * 1000
        self.assertGreater(grace, drain + shutdown, "terminationGracePeriodSeconds must exceed server.drain_delay + "
                           "server.timeouts.shutdown (%d ms + %d ms)" % (drain, shutdown))
        self.assertGreaterEqual(grace - drain - shutdown, 5000, "leave a few seconds for the exit itself")
        self.assertNotIn("lifecycle", self.main, "hydrant drains by itself; the image has no shell for a preStop hook")

    def test_resources(self):
        def cpu(q):
            q = str(q)
            return float(q[:-1]) / 1000 if q.endswith("m") else float(q)

        def mem(q):
            units = {"Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30}
            return int(q[:-2]) * units[q[-2:]] if q[-2:] in units else int(q)

        for c in pod_containers(self.dep):
            r = c["resources"]
            self.assertLessEqual(cpu(r["requests"]["cpu"]), cpu(r["limits"]["cpu"]), c["name"])
            self.assertLessEqual(mem(r["requests"]["memory"]), mem(r["limits"]["memory"]), c["name"])
        r = self.main["resources"]
        # threads: auto is the CPU limit rounded up: a whole number of CPUs gives whole threads their full share
        self.assertEqual(self.conf["server"].get("threads", "auto"), "auto")
        self.assertEqual(cpu(r["limits"]["cpu"]), int(cpu(r["limits"]["cpu"])), "use a whole CPU limit")
        self.assertGreaterEqual(mem(r["requests"]["memory"]), 40 << 20, "below the measured peak RSS under load")
        # the memory limit must hold max_connections idle TLS connections (~24 KiB each) over the loaded 40 MiB
        maxconn = int(self.conf["server"].get("limits", {}).get("max_connections", 10000))
        self.assertGreaterEqual(mem(r["limits"]["memory"]), (40 << 20) + maxconn * 24 * 1024)

    def test_environment_provides_what_the_config_requires(self):
        with open(K8S_CONF) as f:
            text = "\n".join(l.split("#", 1)[0] for l in f)
        required = set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", text))
        self.assertEqual(required, {"DB_HOST", "DB_USER", "DB_PASSWORD"})
        for c in pod_containers(self.dep):
            env = {e["name"]: e for e in c.get("env", [])}
            self.assertLessEqual(required, set(env), c["name"])
            for secret in ("DB_USER", "DB_PASSWORD"):
                self.assertIn("secretKeyRef", env[secret].get("valueFrom", {}), "%s must come from a Secret" % secret)
        init = {e["name"]: e for e in self.pod["initContainers"][0]["env"]}
        main = {e["name"]: e for e in self.main["env"]}
        self.assertEqual(init, main, "migrate and serve must see the same database")

    def test_migrations_run_before_serving(self):
        (init,) = self.pod["initContainers"]
        self.assertEqual(init["image"], self.main["image"])
        self.assertEqual(init["command"][:2], ["/hydrant", "migrate"])
        self.assertTrue(self.conf["database"]["migrations"].startswith("/usr/share/hydrant/"),
                        "the migrations must live outside the ConfigMap mount, in the image")


class DockerfileTest(unittest.TestCase):
    """The Dockerfile and what the manifests expect of the image."""

    @classmethod
    def setUpClass(cls):
        with open(DOCKERFILE) as f:
            cls.lines = [l.strip() for l in re.sub(r"\\\n", " ", f.read()).splitlines()
                         if l.strip() and not l.strip().startswith("#")]
        cls.runtime = cls.lines[max(i for i, l in enumerate(cls.lines) if l.upper().startswith("FROM ")):]

    def instr(self, name, lines=None):
        return [l.split(None, 1)[1] if " " in l else "" for l in (lines or self.lines)
                if l.split(None, 1)[0].upper() == name]

    def test_runtime_stage(self):
        self.assertTrue(self.runtime[0].lower().startswith("from scratch"), self.runtime[0])
        self.assertEqual(self.instr("USER", self.runtime), ["%d:%d" % (UID, UID)])
        self.assertEqual(json.loads(self.instr("ENTRYPOINT", self.runtime)[0]), ["/hydrant", "serve"])
        self.assertEqual(json.loads(self.instr("CMD", self.runtime)[0]), ["-c", CONFIG_DIR + "/" + CONFIG_KEY])
        self.assertEqual(self.instr("HEALTHCHECK"), [], "no HEALTHCHECK: Kubernetes probes the pod")
        self.assertEqual(self.instr("RUN", self.runtime), [], "the runtime stage has no shell to RUN anything")

    def test_exposed_ports_are_the_container_ports(self):
        (dep,) = find(render(), "Deployment")
        ports = sorted(p["containerPort"] for p in dep["spec"]["template"]["spec"]["containers"][0]["ports"])
        exposed = sorted(int(p) for e in self.instr("EXPOSE") for p in e.split())
        self.assertEqual(exposed, ports)

    def test_build_stage(self):
        self.assertIn("BASE=debian:bookworm-slim", self.instr("ARG"))
        with open(os.path.join(REPO, "tools", "dev")) as f:
            dev = f.read()
        m = re.search(r"PACKAGES=\((.*?)\)", dev, re.S)
        dev_pkgs = set(m.group(1).split())
        run = " ".join(self.instr("RUN"))
        for p in ("build-essential", "cmake", "pkg-config", "libh2o-evloop-dev", "libyaml-dev", "libyajl-dev",
                  "libpq-dev", "libssl-dev", "ca-certificates"):
            self.assertIn(p, dev_pkgs, "tools/dev no longer installs " + p)
            self.assertRegex(run, r"(^|\s)%s(\s|$)" % re.escape(p), "the build stage does not install " + p)
        self.assertIn("-DCMAKE_BUILD_TYPE=Release", run)
        self.assertIn("tools/rootfs", run)

    def test_dockerignore_keeps_the_context_small(self):
        with open(os.path.join(REPO, ".dockerignore")) as f:
            rules = [l.strip() for l in f if l.strip() and not l.startswith("#")]
        self.assertEqual(rules[0], "*", "ignore everything, then allow what the Dockerfile copies")
        allowed = {r[1:].rstrip("/") for r in rules[1:] if r.startswith("!")}
        for src in self.instr("COPY"):
            if src.startswith("--from"):
                continue
            for path in src.split()[:-1]:
                self.assertIn(path.rstrip("/"), allowed, "COPY %s is excluded by .dockerignore" % path)


class CheckTest(unittest.TestCase):
    """`hydrant check` on the Kubernetes config, with the Deployment's environment and dummy TLS files."""

    @classmethod
    def setUpClass(cls):
        cls.bin = harness.hydrant_bin()
        cls.cert, cls.key = harness.tls_cert()
        (dep,) = find(render(), "Deployment")
        env = {}
        for e in dep["spec"]["template"]["spec"]["containers"][0]["env"]:
            env[e["name"]] = e.get("value", "dummy-" + e["name"].lower())
        cls.env = harness.clean_env(HYDRANT_TLS_CERT=cls.cert, HYDRANT_TLS_KEY=cls.key, **env)

    def check(self, path, env):
        return harness.run([self.bin, "check", "-c", path], env=env)

    def test_check_accepts_the_config(self):
        r = self.check(K8S_CONF, self.env)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        out = r.stdout
        self.assertIn("conf/kubernetes.yaml: ok", out)
        self.assertIn("0.0.0.0:8080 plain (HTTP/1.1, h2c)", out)
        self.assertIn("0.0.0.0:8443 tls (h2, HTTP/1.1; min TLSv1.2)", out)
        self.assertRegex(out, r"admin: 0\.0\.0\.0:9090")
        self.assertRegex(out, r"threads: \d+ \(auto\)")
        self.assertIn("middleware: request_id, client_ip, access_log, metrics", out)
        self.assertIn("database: dummy-db_user@postgres:5432/hydrant sslmode=prefer", out)
        self.assertNotIn("dummy-db_password", out + r.stderr, "the password must never be printed")

    def test_check_accepts_the_configmap_copy(self):
        (cm,) = find(render(), "ConfigMap", "hydrant")
        d = harness.make_tempdir()
        path = harness.write_file(d, CONFIG_KEY, cm["data"][CONFIG_KEY])
        r = self.check(path, self.env)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def test_routes_are_those_of_the_default_config(self):
        with open(os.path.join(REPO, "conf", "hydrant.yaml")) as f:
            default = yaml.safe_load(f)
        key = lambda r: (r["path"], tuple(r.get("methods", ["GET"])))  # noqa: E731
        mine = {key(r): r for r in k8s_config()["routes"]}
        for r in default["routes"]:
            self.assertIn(key(r), mine, "conf/kubernetes.yaml lacks the route %s %s" % key(r))
            self.assertEqual(mine[key(r)], r)
        extra = {k[0] for k in set(mine) - {key(r) for r in default["routes"]}}
        self.assertEqual(extra, {"/metrics", "/status"})

    def test_missing_database_env_fails_fast(self):
        env = dict(self.env)
        for k in ("DB_HOST", "DB_USER", "DB_PASSWORD"):
            env.pop(k)
        r = self.check(K8S_CONF, env)
        self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
        for k in ("DB_HOST", "DB_USER", "DB_PASSWORD"):
            self.assertIn("environment variable %s is not set" % k, r.stderr)


if __name__ == "__main__":
    harness.run_tests()
