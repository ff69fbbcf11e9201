<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="csrf-token" content="{{csrf}}">
<title>{{title}} · Flamenco Manager</title>
<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">
<link rel="stylesheet" href="/static/flamenco.css?v={{version}}">
<script src="/static/common.js?v={{version}}" defer></script>
<script src="/static/manager.js?v={{version}}" defer></script>
</head>
<body data-page="{{page}}">
<header class="topbar">
  <a class="brand" href="/status"><span class="logo" aria-hidden="true"></span>Flamenco Manager</a>
  % if signed_in:
  <nav>
    <a href="/status" class="{{'active' if nav == 'status' else ''}}">Manager</a>
    <a href="/workers" class="{{'active' if nav == 'workers' else ''}}">Workers</a>
  </nav>
  <div class="who">
    <span id="who-name">site admin</span>
    <form method="post" action="/logout" class="inline">
      <input type="hidden" name="csrf" value="{{csrf}}">
      <button type="submit" class="link" id="sign-out">Sign out</button>
    </form>
  </div>
  % end
</header>
<main>
{{!base}}
</main>
<footer>Flamenco Manager {{version}} · times in <span data-time-zone>your time zone</span></footer>
<script type="application/json" id="page-data">{{!page_data}}</script>
</body>
</html>
