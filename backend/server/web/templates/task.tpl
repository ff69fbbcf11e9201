% rebase('base.tpl', title=title, nav=nav, user=user, csrf=csrf, version=version, page_data=page_data, can_run_workers=can_run_workers, page='task')
<p class="crumbs"><a href="/">Jobs</a> › <a href="/jobs/{{task['job']}}" id="task-job">{{job_name}}</a></p>
<div class="page-head">
  <h1 id="task-name">{{task['name']}}</h1>
  <span class="refresh-state muted" id="refresh-state"></span>
</div>
<section class="card">
  <div class="status-line">
    <span class="badge status-{{task['status']}}" id="task-status" data-status="{{task['status']}}">{{task['status']}}</span>
    <span class="reason" id="task-activity"></span>
    <span class="spacer"></span>
    <span class="actions">
      <button type="button" class="action" id="task-requeue">Requeue</button>
      <button type="button" class="action danger" id="task-cancel">Cancel</button>
    </span>
  </div>
  <div class="bar big" id="task-progress"><span></span></div>
  <p class="error" id="action-error" role="alert" hidden></p>
  <dl class="meta">
    <dt>Type</dt><dd>{{task['task_type']}}</dd>
    <dt>Worker</dt><dd id="task-worker">-</dd>
    <dt>Started</dt><dd id="task-started">-</dd>
    <dt>Finished</dt><dd id="task-finished">-</dd>
    <dt>Failed on</dt><dd id="task-failed-on">-</dd>
    <dt>Id</dt><dd><code>{{task['id']}}</code></dd>
  </dl>
</section>
<section class="card">
  <h2>Attempts</h2>
  <div class="table-wrap">
  <table class="list" id="runs-table">
    <thead><tr><th>#</th><th>Worker</th><th>Started</th><th>Ended</th><th>Took</th><th>Result</th><th>Last activity</th></tr></thead>
    <tbody id="runs-body"></tbody>
  </table>
  </div>
  <p class="empty" id="runs-empty" hidden>This task has not run yet.</p>
</section>
<section class="card">
  <div class="section-head">
    <h2>Log</h2>
    <span class="muted small" id="log-state"></span>
    <span class="spacer"></span>
    <button type="button" class="action" id="log-fetch">Fetch the full log</button>
    <a class="action-link" id="log-download" href="/api/tasks/{{task['id']}}/log?download=1" hidden>Download</a>
  </div>
  <pre class="log-full" id="task-log">Loading…</pre>
</section>
<section class="card">
  <h2>Commands</h2>
  <ol class="commands" id="task-commands">
    % for cmd in task.get('commands') or []:
    <li><code>{{cmd['name']}}</code> <span class="muted small">{{cmd_settings(cmd)}}</span></li>
    % end
  </ol>
</section>
