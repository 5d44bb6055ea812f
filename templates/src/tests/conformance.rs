//! The template-* conformance cases (shared/conformance/cases), reduced to what this crate owns:
//! one parameter set rendered into the case's template, compared with the expected fields.

use serde_json::json;

use super::*;
use crate::{ValueTemplate, apply_template_patch, render_application};

fn yaml(text: &str) -> Json {
    serde_yaml_ng::from_str(text).unwrap()
}

const SPEC: &str = r"
project: default
source:
  repoURL: https://github.com/argoproj/argocd-example-apps.git
  targetRevision: HEAD
  path: guestbook
destination:
  server: https://kubernetes.default.svc
  namespace: guestbook
";

/// Renders a template with `metadata` (YAML) and the standard spec against one element.
fn render(metadata: &str, element: Json, mode: &Mode) -> Result<Json, crate::RenderError> {
    let template = json!({"metadata": yaml(metadata), "spec": yaml(SPEC)});
    render_application(&ValueTemplate::compile(&template, mode)?, &params(element))
}

fn annotations(app: &Json) -> Json {
    app["metadata"]["annotations"].clone()
}

#[test]
fn template_002_fasttemplate_no_recursion() {
    let element = json!({"one": "{{ }}", "two": "{{three}}", "three": "x", " ": "space", "quote": "\"hello\" world"});
    let app = render(
        "name: render-test\nannotations:\n  nested: '{{one}}'\n  no-recursion: '{{two}}'\n  empty-tag: '{{ }}'\n  quote: '{{quote}} {{three}}'\n",
        element,
        &Mode::Fast,
    )
    .unwrap();
    assert_eq!(
        annotations(&app),
        json!({"nested": "{{ }}", "no-recursion": "{{three}}", "empty-tag": "{{ }}", "quote": "\"hello\" world x"})
    );
    assert_eq!(app["spec"], yaml(SPEC));
}

#[test]
fn template_003_fasttemplate_unclosed_tag_error() {
    let err = render(
        "name: render-test\nannotations:\n  bad: '{{properly.closed}} {{improperly.closed}'\n",
        json!({"properly": "x"}),
        &Mode::Fast,
    )
    .unwrap_err();
    assert!(err.to_string().contains("invalid template"), "{err}");
}

#[test]
fn template_004_gotemplate_basic() {
    let element = json!({"one": "two", "three": "four", "braces": "{{one}}", "q": "\"hello\" world", "quote": "\""});
    let app = render(
        "name: render-test\nannotations:\n  simple: '{{ .one }}'\n  twice: '{{.one}}{{.one}}'\n  different: '{{.one}}{{.three}}'\n  braces: '{{ .braces }}'\n  quotes: '{{.q}} {{.three}}'\n  quote: '{{.quote}}'\n",
        element,
        &go_mode(MissingKey::Error),
    )
    .unwrap();
    assert_eq!(
        annotations(&app),
        json!({"simple": "two", "twice": "twotwo", "different": "twofour", "braces": "{{one}}",
               "quotes": "\"hello\" world four", "quote": "\""})
    );
}

#[test]
fn template_005_gotemplate_nested_if_range_index() {
    let element = yaml(
        r"
replicas: 3
image: {name: busybox, version: latest}
hpa: {enabled: true, minReplicas: 1, maxReplicas: 5}
hpa2: {enabled: false, maxReplicas: 5}
volumes: [{name: volume-one, emptyDir: {}}, {name: volume-two, emptyDir: {}}]
admin: {admin-ca: value admin ca, admin-jks: value admin jks}
",
    );
    let app = render(
        r#"
name: render-test
annotations:
  depth: '{{ .image.version }}'
  multiple-depth: '{{ .image.name }}:{{ .image.version }}'
  if-ok: '{{ if .hpa.enabled }}{{ .hpa.maxReplicas }}{{ else }}{{ .replicas }}{{ end }}'
  if-not-ok: '{{ if .hpa2.enabled }}{{ .hpa2.maxReplicas }}{{ else }}{{ .replicas }}{{ end }}'
  loop: '{{ range .volumes }}[{{ .name }}]{{ end }}'
  index: '{{ index .admin "admin-ca" }}, {{ index .admin "admin-jks" }}'
"#,
        element,
        &go_mode(MissingKey::Error),
    )
    .unwrap();
    assert_eq!(
        annotations(&app),
        json!({"depth": "latest", "multiple-depth": "busybox:latest", "if-ok": "5", "if-not-ok": "3",
               "loop": "[volume-one][volume-two]", "index": "value admin ca, value admin jks"})
    );
}

#[test]
fn template_009_gotemplate_field_of_string_error() {
    let err = render(
        "name: render-test\nannotations:\n  x: '{{.data.test}}'\n",
        json!({"data": "a data string"}),
        &go_mode(MissingKey::Default),
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("can't evaluate field test"),
        "{err}"
    );
}

#[test]
fn template_010_toyaml_in_helm_values() {
    let template = json!({"metadata": {"name": "toyaml"}, "spec": {"source": {"helm": {"values": "{{ toYaml . | indent 2 }}"}}}});
    let t = ValueTemplate::compile(&template, &go_mode(MissingKey::Default)).unwrap();
    let app = render_application(
        &t,
        &params(yaml(
            "foo: {bar: {bool: true, number: 2, str: Hello world}}",
        )),
    )
    .unwrap();
    assert_eq!(
        app["spec"]["source"]["helm"]["values"],
        "  foo:\n    bar:\n      bool: true\n      number: 2\n      str: Hello world"
    );
}

#[test]
fn template_011_fromyaml_fromyamlarray() {
    let element =
        json!({"value": "hello: world", "list": "- hello world\n- bonjour tout le monde"});
    let app = render(
        "name: render-test\nannotations:\n  from-yaml: '{{ get (fromYaml .value) \"hello\" }}'\n  from-yaml-array: '{{ fromYamlArray .list | last }}'\n",
        element,
        &go_mode(MissingKey::Default),
    )
    .unwrap();
    assert_eq!(
        annotations(&app),
        json!({"from-yaml": "world", "from-yaml-array": "bonjour tout le monde"})
    );
}

#[test]
fn template_012_fromyaml_error() {
    let err = render(
        "name: render-test\nannotations:\n  x: '{{ get (fromYaml .value) \"hello\" }}'\n",
        json!({"value": "non\n compliant\n yaml"}),
        &go_mode(MissingKey::Default),
    )
    .unwrap_err();
    assert!(err.to_string().contains("error calling fromYaml"), "{err}");
}

#[test]
fn template_013_normalize() {
    let app = render(
        "name: '{{ normalize .cluster }}'\nannotations:\n  normalized: '{{ normalize .cluster }}'\n  other: '{{ .other | normalize }}'\n",
        json!({"cluster": "-.--CLUSTER/name  -./.-", "other": "My_Cluster.Example"}),
        &go_mode(MissingKey::Default),
    )
    .unwrap();
    assert_eq!(app["metadata"]["name"], "cluster-name");
    assert_eq!(
        annotations(&app),
        json!({"normalized": "cluster-name", "other": "my-cluster.example"})
    );
}

#[test]
fn template_017_default_does_not_rescue_missingkey_error() {
    let err = render(
        "name: render-test\nannotations:\n  suffix: '{{ default \"none\" .nameSuffix }}'\n",
        json!({"cluster": "engineering-dev"}),
        &go_mode(MissingKey::Error),
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .contains(r#"map has no entry for key "nameSuffix""#),
        "{err}"
    );
}

#[test]
fn template_022_templatepatch_json() {
    let mode = go_mode(MissingKey::Default);
    let element = params(
        json!({"cluster": "my-cluster", "url": "https://kubernetes.default.svc", "createNamespace": true,
                                "annotations": {"annotation-some-key": "annotation-some-value"}}),
    );
    let t = ValueTemplate::compile(
        &json!({"metadata": {"name": "{{.cluster}}-guestbook"}, "spec": yaml(SPEC)}),
        &mode,
    )
    .unwrap();
    let app = render_application(&t, &element).unwrap();
    let patch = r#"
{
  "metadata": {
    "annotations": {
      {{- range $k, $v := .annotations }}
      "{{ $k }}": "{{ $v }}"
      {{- end }}
    }
  },
  {{- if .createNamespace }}
  "spec": {
    "syncPolicy": {
      "syncOptions": [
        "CreateNamespace=true"
      ]
    }
  }
  {{- end }}
}
"#;
    let patched = apply_template_patch(&app, patch, &element, &mode).unwrap();
    assert_eq!(
        patched["metadata"]["annotations"],
        json!({"annotation-some-key": "annotation-some-value"})
    );
    assert_eq!(
        patched["spec"]["syncPolicy"],
        json!({"syncOptions": ["CreateNamespace=true"]})
    );
    assert_eq!(patched["spec"]["source"], yaml(SPEC)["source"]);
    assert_eq!(patched["metadata"]["name"], "my-cluster-guestbook");
}

#[test]
fn template_023_templatepatch_yaml() {
    let mode = go_mode(MissingKey::Default);
    let patch = r"
spec:
  source:
    helm:
      valueFiles:
      {{- range $valueFile := .valueFiles }}
        - {{ $valueFile }}
      {{- end }}
{{- if .autoSync }}
  syncPolicy:
    automated:
      prune: {{ .prune }}
{{- end }}
";
    let t = ValueTemplate::compile(
        &json!({"metadata": {"name": "{{ .cluster }}-deployment"}, "spec": yaml(SPEC)}),
        &mode,
    )
    .unwrap();
    let dev = params(
        json!({"cluster": "engineering-dev", "autoSync": true, "prune": true,
                            "valueFiles": ["values.large.yaml", "values.debug.yaml"]}),
    );
    let app =
        apply_template_patch(&render_application(&t, &dev).unwrap(), patch, &dev, &mode).unwrap();
    assert_eq!(
        app["spec"]["source"]["helm"]["valueFiles"],
        json!(["values.large.yaml", "values.debug.yaml"])
    );
    assert_eq!(
        app["spec"]["syncPolicy"],
        json!({"automated": {"prune": true}})
    );
    let prod = params(
        json!({"cluster": "engineering-prod", "autoSync": false, "prune": false, "valueFiles": ["values.prod.yaml"]}),
    );
    let app =
        apply_template_patch(&render_application(&t, &prod).unwrap(), patch, &prod, &mode).unwrap();
    assert_eq!(
        app["spec"]["source"]["helm"]["valueFiles"],
        json!(["values.prod.yaml"])
    );
    assert!(app["spec"].get("syncPolicy").is_none());
}

#[test]
fn template_024_templatepatch_cannot_change_project() {
    let mode = go_mode(MissingKey::Default);
    let element = params(json!({"cluster": "my-cluster"}));
    let t = ValueTemplate::compile(
        &json!({"metadata": {"name": "{{.cluster}}-guestbook"}, "spec": yaml(SPEC)}),
        &mode,
    )
    .unwrap();
    let app = render_application(&t, &element).unwrap();
    let patched = apply_template_patch(
        &app,
        "spec:\n  project: my-project\n  destination:\n    namespace: patched\n",
        &element,
        &mode,
    )
    .unwrap();
    assert_eq!(patched["spec"]["project"], "default");
    assert_eq!(
        patched["spec"]["destination"],
        json!({"server": "https://kubernetes.default.svc", "namespace": "patched"})
    );
}

#[test]
fn template_027_gotemplate_number_formatting() {
    let app = render(
        "name: render-test\nannotations:\n  small: '{{.small}}'\n  big: '{{.big}}'\n  ratio: '{{.ratio}}'\n  flag: '{{.flag}}'\n  big-printf: '{{printf \"%.0f\" .big}}'\n",
        json!({"small": 123_456, "big": 1_000_000, "ratio": 2.5, "flag": true}),
        &go_mode(MissingKey::Default),
    )
    .unwrap();
    assert_eq!(
        annotations(&app),
        json!({"small": "123456", "big": "1e+06", "ratio": "2.5", "flag": "true", "big-printf": "1000000"})
    );
}

#[test]
fn cluster_013_flat_list_names_sorted() {
    let element = json!({"clusters": [{"name": "staging-01", "values": {"foo": "bar"}},
                                       {"name": "production_01/west", "values": {"foo": "bar"}},
                                       {"name": "in-cluster", "values": {"foo": "bar"}}]});
    let app = render(
        "name: flat-all\nannotations:\n  count: '{{ len .clusters }}'\n  names: '{{ $n := list }}{{ range .clusters }}{{ $n = append $n .name }}{{ end }}{{ $n | sortAlpha | join \",\" }}'\n  values: '{{ range .clusters }}{{ .values.foo }}{{ end }}'\n",
        element,
        &go_mode(MissingKey::Default),
    )
    .unwrap();
    assert_eq!(
        annotations(&app),
        json!({"count": "3", "names": "in-cluster,production_01/west,staging-01", "values": "barbarbar"})
    );
}
