# Smoke test of a running ghost-engine: health, OpenAPI, one job to done, both artifacts.
#   pwsh scripts/smoke-test.ps1 http://127.0.0.1:8000
# Environment: SMOKE_TIMEOUT (seconds to wait for the job, default 60).
# Exits non-zero, with a line saying what failed, on any failure. The same checks as smoke-test.sh.
param([Parameter(Mandatory = $true)][string]$BaseUrl)
$ErrorActionPreference = 'Stop'
$base = $BaseUrl.TrimEnd('/')
$timeout = if ($env:SMOKE_TIMEOUT) { [int]$env:SMOKE_TIMEOUT } else { 60 }

function Fail([string]$message) { [Console]::Error.WriteLine("smoke: FAIL: $message"); exit 1 }

try { $health = Invoke-RestMethod -Uri "$base/healthz" } catch { Fail "/healthz: $_" }
if (-not $health.ok) { Fail "/healthz did not say ok" }
Write-Output "smoke: /healthz ok"

try { $spec = Invoke-RestMethod -Uri "$base/openapi.json" } catch { Fail "/openapi.json: $_" }
if (-not "$($spec.openapi)".StartsWith('3.')) { Fail "/openapi.json is not an OpenAPI 3 document" }
Write-Output "smoke: /openapi.json ok"

$body = '{"prompt": "a spooky hallway", "seed": 123, "style": "doom"}'
try {
  $response = Invoke-WebRequest -Uri "$base/generate-scene" -Method Post -ContentType 'application/json' -Body $body
} catch { Fail "POST /generate-scene: $_" }
if ($response.StatusCode -ne 202) { Fail "POST /generate-scene answered $($response.StatusCode)" }
$accepted = $response.Content | ConvertFrom-Json
$statusUrl = "$base$($accepted.statusUrl)"
Write-Output "smoke: submitted job $($accepted.jobId)"

$deadline = (Get-Date).AddSeconds($timeout)
while ($true) {
  try { $status = Invoke-RestMethod -Uri $statusUrl } catch { Fail "$statusUrl : $_" }
  if ($status.state -eq 'done') { break }
  if ($status.state -in @('failed', 'cancelled')) { Fail "job ended $($status.state): $($status.error | ConvertTo-Json -Compress)" }
  if ((Get-Date) -gt $deadline) { Fail "job still $($status.state) after ${timeout}s" }
  Start-Sleep -Milliseconds 500
}
Write-Output "smoke: job done with $($status.steps.Count) steps"

if ($status.result.sceneGraphUrl) {
  try {
    $scene = Invoke-RestMethod -Uri $status.result.sceneGraphUrl
    $minimap = (Invoke-WebRequest -Uri $status.result.asciiMinimapUrl).Content
  } catch { Fail "artifact download: $_" }
  if ($minimap -is [byte[]]) { $minimap = [Text.Encoding]::UTF8.GetString($minimap) }
} else {
  $scene = $status.result.sceneGraph
  $minimap = $status.result.asciiMinimap
}
if (-not $scene.rooms -or $scene.rooms.Count -lt 1) { Fail "sceneGraph.json has no rooms" }
# The map is everything above the first blank line (the legend is below it).
$map = ($minimap -split "`n`n", 2)[0]
if (-not ($map.Contains('@') -and $map.Contains('>'))) { Fail "asciiMinimap.txt lacks the start (@) or exit (>)" }
# minimap.png: a presigned URL, or (demo mode) this API's own path.
$pngUrl = $status.result.minimapPngUrl
if (-not $pngUrl) { Fail "the result has no minimapPngUrl" }
if (-not $pngUrl.StartsWith('http')) { $pngUrl = "$base$pngUrl" }
try { $png = (Invoke-WebRequest -Uri $pngUrl).Content } catch { Fail "minimapPngUrl did not download: $_" }
if ([Text.Encoding]::ASCII.GetString($png[1..3]) -ne 'PNG') { Fail "minimap.png is not a PNG" }
Write-Output "smoke: sceneGraph.json has $($scene.rooms.Count) rooms; asciiMinimap.txt:"
Write-Output $minimap
Write-Output "smoke: PASS"
exit 0
