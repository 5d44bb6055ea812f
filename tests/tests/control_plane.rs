//! Proves the control-plane harness against real etcd + kube-apiserver
//! processes. Needs `kube-apiserver` built by `scripts/install-control-plane.sh`
//! (`scripts/test.sh` runs it first); without it this test fails, on purpose.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use argosy_tests::{ADMIN_USER, AuditEvent, ControlPlane, HARNESS_USER_AGENT, MANAGEMENT};
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::jiff::Timestamp;
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};

fn config_map(name: &str, value: &str) -> ConfigMap {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": { "name": name, "namespace": "default" },
        "data": { "key": value },
    }))
    .expect("a valid ConfigMap")
}

/// Polls the audit log until `pred` matches an event (the log is written
/// synchronously, but don't depend on exact timing).
async fn wait_audit(
    cp: &ControlPlane,
    cluster: &str,
    pred: impl Fn(&AuditEvent) -> bool,
) -> Vec<AuditEvent> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let events = cp.audit_writes(cluster).expect("readable audit log");
        if events.iter().any(&pred) || Instant::now() > deadline {
            return events;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_plane_harness_works() -> anyhow::Result<()> {
    let started = Instant::now();
    let mut cp = ControlPlane::start(2)
        .await
        .context("starting the control plane (run scripts/install-control-plane.sh first)")?;
    eprintln!("start(2) took {:.1}s", started.elapsed().as_secs_f64());

    assert_eq!(cp.management().name, MANAGEMENT);
    let names: Vec<&str> = cp.workloads().iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["workload-1", "workload-2"]);
    let ports: std::collections::BTreeSet<u16> = cp.clusters().iter().map(|c| c.port).collect();
    assert_eq!(ports.len(), 3, "each cluster has its own port");

    let mgmt = cp.management().client().await?;
    let wl1_cluster = cp.workloads()[0].clone();
    let wl1 = wl1_cluster.client().await?;
    let wl2 = cp.workloads()[1].client().await?;

    // Isolation: an object created in mgmt is not visible in workload-1.
    let window_start = Timestamp::now();
    let mgmt_cms: Api<ConfigMap> = Api::namespaced(mgmt.clone(), "default");
    mgmt_cms
        .create(&PostParams::default(), &config_map("only-in-mgmt", "m"))
        .await?;
    assert!(mgmt_cms.get_opt("only-in-mgmt").await?.is_some());
    let wl1_cms: Api<ConfigMap> = Api::namespaced(wl1.clone(), "default");
    assert!(
        wl1_cms.get_opt("only-in-mgmt").await?.is_none(),
        "etcd prefixes must isolate clusters"
    );

    // Server-side apply.
    let applied = wl1_cms
        .patch(
            "applied",
            &PatchParams::apply("argosy-harness-test").force(),
            &Patch::Apply(config_map("applied", "v1")),
        )
        .await?;
    assert_eq!(applied.data.unwrap()["key"], "v1");
    let managers: Vec<String> = applied
        .metadata
        .managed_fields
        .unwrap_or_default()
        .into_iter()
        .filter_map(|m| m.manager)
        .collect();
    assert!(
        managers.iter().any(|m| m == "argosy-harness-test"),
        "{managers:?}"
    );
    let reapplied = wl1_cms
        .patch(
            "applied",
            &PatchParams::apply("argosy-harness-test").force(),
            &Patch::Apply(config_map("applied", "v2")),
        )
        .await?;
    assert_eq!(reapplied.data.unwrap()["key"], "v2");

    // etcd counts a cluster's keys by prefix (what benchmarks poll instead of the API server).
    let default_cms = |cluster: &str| format!("/argosy/{cluster}/configmaps/default/");
    assert_eq!(cp.etcd_count(&default_cms("workload-1")).await?, 1);
    assert_eq!(cp.etcd_count(&default_cms(MANAGEMENT)).await?, 1);
    assert_eq!(
        cp.etcd_count("/argosy/workload-2/configmaps/nowhere/")
            .await?,
        0
    );

    // Audit: the create in mgmt is there, by admin, inside the window; the
    // applies in workload-1 are patches; mgmt's log has no workload-1 writes.
    let is_our_create = |e: &AuditEvent| {
        e.verb == "create"
            && e.resource.as_deref() == Some("configmaps")
            && e.name.as_deref() == Some("only-in-mgmt")
    };
    let mgmt_events = wait_audit(&cp, MANAGEMENT, is_our_create).await;
    let create = mgmt_events
        .iter()
        .find(|e| is_our_create(e))
        .expect("create of only-in-mgmt in mgmt's audit log");
    assert_eq!(create.username, ADMIN_USER);
    assert_eq!(create.code, Some(201));
    assert!(create.succeeded());
    assert!(create.received_between(window_start, Timestamp::now()));
    assert_eq!(create.user_agent, HARNESS_USER_AGENT);
    assert!(
        mgmt_events
            .iter()
            .all(|e| e.name.as_deref() != Some("applied")),
        "audit logs are per cluster"
    );
    let wl1_events = wait_audit(&cp, "workload-1", |e| {
        e.verb == "patch" && e.name.as_deref() == Some("applied")
    })
    .await;
    let admin_writes = wl1_events
        .iter()
        .filter(|e| {
            e.username == ADMIN_USER
                && e.user_agent == HARNESS_USER_AGENT
                && e.received_between(window_start, Timestamp::now())
        })
        .count();
    assert_eq!(admin_writes, 2, "two applies by admin: {wl1_events:#?}");

    // The kubeconfig works for binaries (kubectl is on every machine of this kind).
    let kubeconfig = cp.dir().join("wl1.kubeconfig");
    wl1_cluster.write_kubeconfig(&kubeconfig)?;
    match std::process::Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .args(["get", "configmap", "applied", "-o", "jsonpath={.data.key}"])
        .output()
    {
        Ok(out) => {
            assert!(
                out.status.success(),
                "kubectl failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert_eq!(String::from_utf8_lossy(&out.stdout), "v2");
        }
        Err(e) => eprintln!("kubectl not runnable ({e}); kubeconfig not checked with it"),
    }

    // Fault injection: a stopped cluster refuses requests, the others don't care.
    cp.stop_cluster("workload-1").await?;
    assert!(!cp.is_running("workload-1")?);
    let err = wl1_cms.get("applied").await;
    assert!(err.is_err(), "workload-1 must be unreachable: {err:?}");
    Api::<ConfigMap>::namespaced(wl2.clone(), "default")
        .list(&Default::default())
        .await?;
    mgmt_cms.get("only-in-mgmt").await?;

    // Restart: same address, same data, the old client reconnects.
    let restarted = Instant::now();
    cp.start_cluster("workload-1").await?;
    eprintln!(
        "start_cluster took {:.1}s",
        restarted.elapsed().as_secs_f64()
    );
    assert_eq!(cp.workloads()[0].server, wl1_cluster.server);
    let after = wl1_cms.get("applied").await?;
    assert_eq!(after.data.unwrap()["key"], "v2");

    // Unknown names are errors, not panics.
    assert!(cp.stop_cluster("nope").await.is_err());
    assert!(cp.audit_writes("nope").is_err());

    let dir = cp.dir().to_owned();
    drop(cp);
    assert!(!dir.exists(), "temp dir removed on drop");
    Ok(())
}
