% rebase('base.tpl', title=title, nav=nav, user=user, csrf=csrf, version=version, page_data=page_data, can_run_workers=can_run_workers, page='job')
<p class="crumbs"><a href="/">Jobs</a> › <span>{{job['project_name'] or job['project']}}</span></p>
<div class="page-head">
  <h1 id="job-name">{{job['name']}}</h1>
  <span class="refresh-state muted" id="refresh-state"></span>
</div>
<section class="card job-summary">
  <div class="status-line">
    <span class="badge status-{{job['status']}}" id="job-status" data-status="{{job['status']}}">{{job['status']}}</span>
    <span class="reason" id="job-reason">{{job['status_reason']}}</span>
    <span class="spacer"></span>
    <span class="actions" id="job-actions"></span>
  </div>
  <div class="bar big" id="job-progress" data-progress="{{job['progress']}}"><span></span></div>
  <div class="counts">
    <span id="job-progress-text">{{job['progress']}}%</span>
    <span class="muted">of {{job['tasks_total']}} tasks</span>
    <span id="job-counts"></span>
  </div>
  <p class="error" id="action-error" role="alert" hidden></p>
  <dl class="meta">
    <dt>Type</dt><dd id="job-type">{{type_label}}</dd>
    <dt>Project</dt><dd>{{job['project_name'] or job['project']}}</dd>
    <dt>Submitted by</dt><dd>{{job['user_name'] or '-'}}</dd>
    <dt>Created</dt><dd><time datetime="{{job['created']}}">{{job['created']}}</time></dd>
    <dt>Manager</dt><dd>{{job['manager_name'] or '-'}}</dd>
    <dt>Priority</dt><dd><span id="job-priority">{{job['priority']}}</span>
      <form class="inline priority-form" id="priority-form">
        <input type="number" id="priority-input" min="1" max="100" value="{{job['priority']}}" aria-label="new priority">
        <button type="submit" class="link" id="priority-set">Set</button>
      </form></dd>
    <dt>Files</dt><dd>{{'uploaded to the Server' if job['files_mode'] == 'upload' else 'shared storage'}}</dd>
    % if job['worker_tag']:
    <dt>Worker tag</dt><dd>{{job['worker_tag']}}</dd>
    % end
    % if job['depends_on']:
    <dt>Depends on</dt><dd>
      % for dep in job['depends_on']:
      <a href="/jobs/{{dep}}">{{dep}}</a>
      % end
    </dd>
    % end
    <dt>Id</dt><dd><code>{{job['id']}}</code></dd>
  </dl>
</section>

<section class="card" id="latest-frame">
  <h2>Latest frame</h2>
  <div id="frame-body">
  % if job['files_mode'] != 'upload':
    % ro = job['settings'].get('render_output')
    <p class="muted" id="frame-shared">This job writes its output to shared storage{{' (%s)' % ro if ro else ''}},
      so the Server has no frames to show here.</p>
  % else:
    <p class="muted">Loading…</p>
  % end
  </div>
</section>

<section class="card">
  <h2>Timeline</h2>
  <div id="timeline" class="timeline"><p class="muted">Loading…</p></div>
</section>

<section class="card">
  <div class="section-head">
    <h2>Tasks <span class="muted small" id="tasks-info"></span></h2>
    <label class="muted small">Show
      <select id="task-filter">
        <option value="">all tasks</option>
        % for s, label in task_statuses:
        <option value="{{s}}">{{label}}</option>
        % end
      </select>
    </label>
    <span class="spacer"></span>
    <span class="task-bulk" id="task-bulk" hidden>
      <span id="task-bulk-count"></span>
      <button type="button" class="action" data-task-bulk="requeue">Requeue</button>
      <button type="button" class="action danger" data-task-bulk="cancel">Cancel</button>
    </span>
  </div>
  <p class="error" id="task-error" role="alert" hidden></p>
  <div class="table-wrap">
  <table class="list" id="tasks-table">
    <thead><tr><th class="col-check"><input type="checkbox" id="select-all-tasks" aria-label="select all tasks shown"></th>
      <th>Name</th><th>Status</th><th class="col-progress">Progress</th><th>Worker</th><th>Activity</th>
      <th>Started</th><th>Duration</th><th></th></tr></thead>
    <tbody id="tasks-body"></tbody>
  </table>
  </div>
</section>

<div class="two-col">
<section class="card">
  <h2>Settings</h2>
  <table class="kv" id="settings">
    % for key, value in settings:
    <tr><th>{{key}}</th><td>{{value}}</td></tr>
    % end
  </table>
</section>
<section class="card">
  <h2>Log</h2>
  <div class="log-wrap">
  <table class="list log" id="job-log">
    <thead><tr><th>When</th><th>Who</th><th>What</th></tr></thead>
    <tbody id="log-body"></tbody>
  </table>
  </div>
</section>
</div>
<noscript><p class="error">These pages need JavaScript to show the tasks and refresh the job.</p></noscript>
