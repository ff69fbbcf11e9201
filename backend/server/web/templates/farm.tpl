% rebase('base.tpl', title=title, nav=nav, user=user, csrf=csrf, version=version, page_data=page_data, can_run_workers=can_run_workers, page='farm')
<div class="page-head">
  <h1>Farm</h1>
  <span class="refresh-state muted" id="refresh-state"></span>
</div>
<div class="tiles" id="farm-tiles"></div>
<div class="two-col">
<section class="card">
  <h2>Managers</h2>
  <div id="farm-managers"></div>
</section>
<section class="card">
  <h2>Tasks completed per minute <span class="muted small">(the last hour)</span></h2>
  <div id="farm-chart" class="chart"></div>
</section>
</div>
<section class="card">
  <h2>Running jobs</h2>
  <div class="table-wrap">
  <table class="list" id="farm-jobs">
    <thead><tr><th>Name</th><th>Status</th><th class="col-progress">Progress</th><th>Project</th><th>Manager</th>
      <th>Submitted by</th></tr></thead>
    <tbody id="farm-jobs-body"></tbody>
  </table>
  </div>
  <p class="empty" id="farm-jobs-empty" hidden>Nothing is running.</p>
</section>
