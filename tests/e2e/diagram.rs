//! Job diagrams, parsed as XML: a node per task with its label and state
//! fill, solid parent edges, dashed dependency edges, a legend, themes; jobs
//! over 200 tasks refused.

use std::time::Duration;

use serde_json::json;

use crate::harness::Host;

const WAIT: Duration = Duration::from_secs(60);

async fn svg(host: &Host, id: &str, query: &str) -> anyhow::Result<(u16, String)> {
    let resp = reqwest::get(format!("{}/v1/jobs/{id}/diagram.svg{query}", host.base)).await?;
    let status = resp.status().as_u16();
    if status == 200 {
        assert_eq!(resp.headers()["content-type"], "image/svg+xml");
    }
    Ok((status, resp.text().await?))
}

/// (task id, state, fill, label lines) of every node.
fn nodes(doc: &roxmltree::Document) -> Vec<(String, String, String, Vec<String>)> {
    doc.descendants()
        .filter(|n| n.attribute("class") == Some("task"))
        .map(|g| {
            let rect = g.children().find(|c| c.has_tag_name("rect")).unwrap();
            let lines = g
                .descendants()
                .filter(|c| c.has_tag_name("tspan"))
                .map(|t| t.text().unwrap_or("").to_owned());
            (
                g.attribute("data-task").unwrap().to_owned(),
                g.attribute("data-state").unwrap().to_owned(),
                rect.attribute("fill").unwrap().to_owned(),
                lines.collect(),
            )
        })
        .collect()
}

fn edges<'a, 'i>(doc: &'a roxmltree::Document<'i>, kind: &str) -> Vec<roxmltree::Node<'a, 'i>> {
    let class = format!("edge {kind}");
    doc.descendants().filter(|n| n.attribute("class") == Some(class.as_str())).collect()
}

#[tokio::test]
async fn a_job_is_drawn_with_its_tasks_edges_states_and_legend() -> anyhow::Result<()> {
    let host = Host::start(&["--runners", "2"]).await?;
    host.upload("fanout").await?;
    let id = host.submit("Root", json!({"num_subtasks": 2})).await?;
    assert_eq!(host.wait(&id, WAIT).await?["state"], "completed");
    let tasks = host.tasks(&id).await?;
    let (status, text) = svg(&host, &id, "").await?;
    assert_eq!(status, 200, "{text}");
    let doc = roxmltree::Document::parse(&text)?;
    let drawn = nodes(&doc);
    assert_eq!(drawn.len(), tasks.len());
    for task in &tasks {
        let node = drawn.iter().find(|n| n.0 == task["id"].as_str().unwrap()).expect("a node per task");
        assert_eq!((node.1.as_str(), node.2.as_str()), ("computed", "#F0FFF0"));
        assert_eq!(node.3[0], task["display"].as_str().unwrap().lines().next().unwrap());
    }
    let parents = tasks.iter().filter(|t| !t["parent"].is_null()).count();
    let deps: usize = tasks.iter().map(|t| t["depends_on"].as_array().map_or(0, Vec::len)).sum();
    assert_eq!(edges(&doc, "subtask").len(), parents);
    let dashed = edges(&doc, "dependency");
    assert_eq!(dashed.len(), deps);
    assert!(
        deps > 0
            && dashed.iter().all(
                |e| e.attribute("stroke-dasharray").is_some() && e.attribute("stroke") == Some("#9B1A47")
            )
    );
    assert!(edges(&doc, "subtask").iter().all(|e| e.attribute("stroke-dasharray").is_none()));
    let title = doc.descendants().find(|n| n.has_tag_name("title")).and_then(|t| t.text()).unwrap_or("");
    assert_eq!(title, "Root (completed)");
    let legend: Vec<&str> = doc
        .descendants()
        .filter(|n| n.attribute("class") == Some("legend"))
        .flat_map(|g| g.descendants().filter(|t| t.has_tag_name("text")).map(|t| t.text().unwrap_or("")))
        .collect();
    let want = [
        "queued",
        "running",
        "computed",
        "failed",
        "failed_optional",
        "skipped",
        "optional",
        "subtask",
        "depends on",
    ];
    assert_eq!(legend, want);

    let (status, dark) = svg(&host, &id, "?theme=dark").await?;
    assert_eq!(status, 200);
    let doc = roxmltree::Document::parse(&dark)?;
    let background = doc.descendants().find(|n| n.attribute("class") == Some("background")).unwrap();
    assert_eq!(background.attribute("fill"), Some("#1E1E1E"));
    assert!(nodes(&doc).iter().all(|n| n.2 == "#2F4F2F"));
    let (status, _) = svg(&host, &id, "?theme=neon").await?;
    assert_eq!(status, 400);
    Ok(())
}

#[tokio::test]
async fn a_failed_task_shows_its_error_and_big_jobs_are_drawn_in_groups() -> anyhow::Result<()> {
    let host = Host::start(&["--runners", "2"]).await?;
    host.upload("movies-v1.0").await?;
    host.upload("probe").await?;
    let input = json!({"titles": ["The Matrix", "Nope"]});
    let id = host.submit("MoviesStats@v1.0", input).await?;
    assert_eq!(host.wait(&id, WAIT).await?["state"], "failed");
    let (_, text) = svg(&host, &id, "").await?;
    let doc = roxmltree::Document::parse(&text)?;
    let failed: Vec<_> = nodes(&doc).into_iter().filter(|n| n.1 == "failed").collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].2, "#FA8072");
    assert_eq!(failed[0].3.last().map(String::as_str), Some("error: KeyError('Title')"));

    // Over 200 tasks the diagram draws groups: the root, and its 200 no-ops
    // as one box counting them by state.
    let big = host.submit("Fanout", json!({"n": 200})).await?;
    host.wait(&big, WAIT).await?;
    let (status, text) = svg(&host, &big, "").await?;
    assert_eq!(status, 200, "{text}");
    let doc = roxmltree::Document::parse(&text)?;
    let groups: Vec<_> = doc.descendants().filter(|n| n.attribute("class") == Some("group")).collect();
    let members: Vec<_> =
        groups.iter().map(|g| (g.attribute("data-task-type"), g.attribute("data-members"))).collect();
    assert_eq!(members, [(Some("Fanout"), Some("1")), (Some("Noop"), Some("200"))]);
    let bar = groups[1].descendants().find(|n| n.attribute("class") == Some("bar")).unwrap();
    assert_eq!((bar.attribute("data-state"), bar.attribute("data-count")), (Some("computed"), Some("200")));
    let title = doc.descendants().find(|n| n.attribute("class") == Some("title")).unwrap();
    assert_eq!(title.text(), Some("Fanout (completed): 201 tasks in 2 groups"));
    let root = groups[1].attribute("data-parent").unwrap();

    // A group's tasks, by the filters of the task list.
    let (host, big) = (&host, &big);
    let page = |query: String| async move { host.get(&format!("/v1/jobs/{big}/tasks?{query}")).await };
    let (_, noops) = page(format!("task_type=Noop&parent={root}&offset=190&limit=50")).await?;
    let noops = noops.as_array().unwrap();
    assert_eq!(noops.len(), 10, "200 no-ops, 190 skipped");
    assert!(noops.iter().all(|t| t["task_type"]["name"] == "Noop" && t["parent"] == root));
    let (_, none) = page("state=failed,skipped".into()).await?;
    assert_eq!(none, serde_json::json!([]));
    let (_, roots) = page("state=computed&task_type=Fanout".into()).await?;
    assert_eq!(roots.as_array().map(Vec::len), Some(1));
    let (status, refused) = page("state=done".into()).await?;
    assert_eq!((status.as_u16(), refused["error"]["code"].as_str()), (400, Some("invalid_task_state")));
    Ok(())
}
