<?xml version="1.0" encoding="utf-8"?>
<!DOCTYPE TS>
<TS version="2.1" language="en_US" sourcelanguage="zh_CN">
<context>
    <name></name>
    <message>
        <source>解锁管控线图层</source>
        <translation>Unlock a control-line layer</translation>
    </message>
    <message>
        <source>选择地类代码</source>
        <extracomment>English for the Chinese source strings, used when the app runs in English and the Qt translation has no entry yet.</extracomment>
        <translation>Choose a land-use code</translation>
    </message>
    <message>
        <source>按代码或名称搜索</source>
        <translation>Search by code or name</translation>
    </message>
    <message>
        <source>批量编辑 {0} 个要素的属性</source>
        <translation>Batch edit the attributes of {0} features</translation>
    </message>
    <message>
        <source>（多个值，留空不改）</source>
        <translation>(several values; leave empty to keep)</translation>
    </message>
    <message>
        <source>选择…</source>
        <translation>Choose…</translation>
    </message>
    <message>
        <source>合并要素</source>
        <translation>Merge features</translation>
    </message>
    <message>
        <source>合并后保留哪个要素的属性？</source>
        <translation>Keep the attributes of which feature?</translation>
    </message>
</context>
<context>
    <name>AttributeTable</name>
    <message>
        <source>包含</source>
        <translation>contains</translation>
    </message>
    <message>
        <source>开头是</source>
        <translation>starts with</translation>
    </message>
    <message>
        <source>为空</source>
        <translation>is empty</translation>
    </message>
    <message>
        <source>不为空</source>
        <translation>is not empty</translation>
    </message>
    <message>
        <source>值</source>
        <translation>Value</translation>
    </message>
    <message>
        <source>筛选</source>
        <translation>Filter</translation>
    </message>
    <message>
        <source>清除筛选</source>
        <translation>Clear filter</translation>
    </message>
    <message>
        <source>缩放至所选</source>
        <translation>Zoom to selection</translation>
    </message>
    <message>
        <source>清除选择</source>
        <translation>Clear selection</translation>
    </message>
    <message>
        <source>仅显示所选</source>
        <translation>Selected only</translation>
    </message>
    <message>
        <source>图层</source>
        <translation>Layer</translation>
    </message>
    <message>
        <source>显示 {0} / {1} · 已选 {2}</source>
        <translation>{0} / {1} shown · {2} selected</translation>
    </message>
</context>
<context>
    <name>CommitteeDialog</name>
    <message>
        <source>记录评议委员会决定</source>
        <translation>Record the committee decision</translation>
    </message>
    <message>
        <source>参会委员，以顿号或逗号分隔</source>
        <translation>Members present, separated by 、 or commas</translation>
    </message>
    <message>
        <source>结论</source>
        <translation>Outcome</translation>
    </message>
    <message>
        <source>主任委员</source>
        <translation>Chair</translation>
    </message>
    <message>
        <source>参会委员</source>
        <translation>Members present</translation>
    </message>
    <message>
        <source>意见</source>
        <translation>Comment</translation>
    </message>
</context>
<context>
    <name>ComparisonView</name>
    <message>
        <source>规划 A</source>
        <translation>Plan A</translation>
    </message>
    <message>
        <source>规划 B</source>
        <translation>Plan B</translation>
    </message>
    <message>
        <source>在审查列表中选择一个图斑</source>
        <translation>Choose a piece in the review list</translation>
    </message>
    <message>
        <source>A：{0}</source>
        <translation>A: {0}</translation>
    </message>
    <message>
        <source>B：{0}</source>
        <translation>B: {0}</translation>
    </message>
    <message>
        <source>正在读取图层…</source>
        <translation>Reading layers…</translation>
    </message>
    <message>
        <source>（无图层）</source>
        <translation>(no layer)</translation>
    </message>
</context>
<context>
    <name>DecisionForm</name>
    <message>
        <source>评议决定</source>
        <translation>Review decision</translation>
    </message>
    <message>
        <source>未选择图斑</source>
        <translation>No piece selected</translation>
    </message>
    <message>
        <source>评议意见（将与决定一起记录）</source>
        <translation>Comment (recorded with the decision)</translation>
    </message>
    <message>
        <source>保存决定</source>
        <translation>Save decision</translation>
    </message>
    <message>
        <source>记录决定、评议人与时间（Ctrl+Enter）</source>
        <translation>Record the decision, the reviewer and the time (Ctrl+Enter)</translation>
    </message>
    <message>
        <source>按上位规划调整并修改</source>
        <translation>Adjust by precedence and edit</translation>
    </message>
    <message>
        <source>将合并一张图中按上位规划确定的地类写入图斑（可撤销，Ctrl+Z）并记录决定</source>
        <translation>Write the class the merged map takes from the higher-level plan into the parcel (undo with Ctrl+Z) and record the decision</translation>
    </message>
    <message>
        <source>决定</source>
        <translation>Decision</translation>
    </message>
    <message>
        <source>意见</source>
        <translation>Comment</translation>
    </message>
    <message>
        <source>评议人</source>
        <translation>Reviewer</translation>
    </message>
    <message>
        <source>（未指定，请以 --user 姓名 打开评审模式）</source>
        <translation>(not set: open review mode with --user NAME)</translation>
    </message>
    <message>
        <source>{0}（不在评议人名单中，不能记录决定）</source>
        <translation>{0} (not on the reviewer list: cannot record decisions)</translation>
    </message>
    <message>
        <source>{0} 公顷</source>
        <translation>{0} ha</translation>
    </message>
    <message>
        <source>上位规划地类：{0} {1}（{2}）</source>
        <translation>Higher-level plan class: {0} {1} ({2})</translation>
    </message>
    <message>
        <source>上次：{0} {1}</source>
        <translation>Last: {0} {1}</translation>
    </message>
    <message>
        <source>公众意见 {0} 条：</source>
        <translation>{0} public comment(s):</translation>
    </message>
</context>
<context>
    <name>ExportDialog</name>
    <message>
        <source>公开发布导出：规划图、统计表、数据包</source>
        <translation>Public-disclosure export: plan maps, statistics, data package</translation>
    </message>
    <message>
        <source>图幅</source>
        <translation>Sheets</translation>
    </message>
    <message>
        <source>公开版</source>
        <translation>Public edition</translation>
    </message>
    <message>
        <source>内部版</source>
        <translation>Internal edition</translation>
    </message>
    <message>
        <source>例如 浙S(2025)12号</source>
        <translation>e.g. 浙S(2025)12号</translation>
    </message>
    <message>
        <source>自动（县域显示更大者）</source>
        <translation>Automatic (whichever shows the county larger)</translation>
    </message>
    <message>
        <source>横向</source>
        <translation>Landscape</translation>
    </message>
    <message>
        <source>纵向</source>
        <translation>Portrait</translation>
    </message>
    <message>
        <source>浏览…</source>
        <translation>Browse…</translation>
    </message>
    <message>
        <source>格式</source>
        <translation>Formats</translation>
    </message>
    <message>
        <source>版本</source>
        <translation>Edition</translation>
    </message>
    <message>
        <source>审图号</source>
        <translation>Map review no. (审图号)</translation>
    </message>
    <message>
        <source>公开版图形概化</source>
        <translation>Generalisation (public)</translation>
    </message>
    <message>
        <source>图纸</source>
        <translation>Paper</translation>
    </message>
    <message>
        <source>方向</source>
        <translation>Orientation</translation>
    </message>
    <message>
        <source>分辨率（PNG）</source>
        <translation>Resolution (PNG)</translation>
    </message>
    <message>
        <source>输出文件夹</source>
        <translation>Output folder</translation>
    </message>
    <message>
        <source>替换该文件夹中以前的导出</source>
        <translation>Replace an earlier export in this folder</translation>
    </message>
    <message>
        <source>选项</source>
        <translation>Options</translation>
    </message>
    <message>
        <source>预览</source>
        <translation>Preview</translation>
    </message>
    <message>
        <source>刷新预览</source>
        <translation>Refresh preview</translation>
    </message>
    <message>
        <source>预览（当前图幅）</source>
        <translation>Preview (current sheet)</translation>
    </message>
    <message>
        <source>导出</source>
        <translation>Export</translation>
    </message>
    <message>
        <source>取消导出</source>
        <translation>Cancel export</translation>
    </message>
    <message>
        <source>关闭</source>
        <translation>Close</translation>
    </message>
    <message>
        <source>项目中没有可出的图</source>
        <translation>The project has no sheet to make</translation>
    </message>
    <message>
        <source>输出到文件夹</source>
        <translation>Export to folder</translation>
    </message>
    <message>
        <source>每幅图加水印：</source>
        <translation>Watermark on every sheet: </translation>
    </message>
    <message>
        <source>图形概化 {0} 米，依据：{1}</source>
        <translation>Geometry generalised by {0} m; basis: {1}</translation>
    </message>
    <message>
        <source>请至少选择一种图的格式</source>
        <translation>Choose at least one sheet format</translation>
    </message>
    <message>
        <source>正在生成预览…</source>
        <translation>Composing the preview…</translation>
    </message>
    <message>
        <source>预览：{0}</source>
        <translation>Preview: {0}</translation>
    </message>
    <message>
        <source>预览失败：</source>
        <translation>Preview failed: </translation>
    </message>
    <message>
        <source>不能导出</source>
        <translation>Cannot export</translation>
    </message>
    <message>
        <source>请选择输出文件夹</source>
        <translation>Choose an output folder</translation>
    </message>
    <message>
        <source>正在导出…</source>
        <translation>Exporting…</translation>
    </message>
    <message>
        <source>公开发布导出</source>
        <translation>Public-disclosure export</translation>
    </message>
    <message>
        <source>正在取消…</source>
        <translation>Cancelling…</translation>
    </message>
    <message>
        <source>已导出 {0} 个文件到 {1}</source>
        <translation>Exported {0} files to {1}</translation>
    </message>
    <message>
        <source>导出失败：</source>
        <translation>Export failed: </translation>
    </message>
    <message>
        <source>导出失败</source>
        <translation>Export failed</translation>
    </message>
    <message>
        <source>已取消，未留下任何文件</source>
        <translation>Cancelled; no files were left behind</translation>
    </message>
    <message>
        <source>公开发布导出（规划图、统计表、数据包）…</source>
        <translation>Public-disclosure export (maps, statistics, data package)…</translation>
    </message>
</context>
<context>
    <name>IdentifyPanel</name>
    <message>
        <source>项目</source>
        <translation>Item</translation>
    </message>
    <message>
        <source>值</source>
        <translation>Value</translation>
    </message>
    <message>
        <source>此处没有要素</source>
        <translation>No features here</translation>
    </message>
    <message>
        <source>图层</source>
        <translation>Layer</translation>
    </message>
    <message>
        <source>统一分类代码（用地用海 2023）</source>
        <translation>Unified code (land and sea use 2023)</translation>
    </message>
    <message>
        <source>统一分类名称</source>
        <translation>Unified class name</translation>
    </message>
    <message>
        <source>分类转换状态</source>
        <translation>Classification status</translation>
    </message>
    <message>
        <source>原分类代码（字段 {0}）</source>
        <translation>Source code (field {0})</translation>
    </message>
    <message>
        <source>原分类名称（字段 {0}）</source>
        <translation>Source class name (field {0})</translation>
    </message>
    <message>
        <source>平面面积（{0} 投影平面）</source>
        <translation>Planar area ({0} projected plane)</translation>
    </message>
    <message>
        <source>椭球面积（CGCS2000 椭球面）</source>
        <translation>Ellipsoidal area (CGCS2000 ellipsoid)</translation>
    </message>
    <message>
        <source>平面长度（{0}）</source>
        <translation>Planar length ({0})</translation>
    </message>
    <message>
        <source>相交的控制线（三区三线）</source>
        <translation>Control lines touching it (三区三线)</translation>
    </message>
    <message>
        <source>无</source>
        <translation>none</translation>
    </message>
    <message>
        <source>重叠 {0}</source>
        <translation>overlap {0}</translation>
    </message>
    <message>
        <source>相接</source>
        <translation>touching</translation>
    </message>
    <message>
        <source>差异图斑（冲突登记）</source>
        <translation>Conflicts (register)</translation>
    </message>
    <message>
        <source>（碎片）</source>
        <translation> (sliver)</translation>
    </message>
    <message>
        <source>全部属性</source>
        <translation>All attributes</translation>
    </message>
</context>
<context>
    <name>ImportLayerDialog</name>
    <message>
        <source>导入图层</source>
        <translation>Import layer</translation>
    </message>
    <message>
        <source>浏览…</source>
        <translation>Browse…</translation>
    </message>
    <message>
        <source>不分类</source>
        <translation>Not classified</translation>
    </message>
    <message>
        <source>自动识别</source>
        <translation>Detect automatically</translation>
    </message>
    <message>
        <source>自动</source>
        <translation>Automatic</translation>
    </message>
    <message>
        <source>文件</source>
        <translation>File</translation>
    </message>
    <message>
        <source>图层名称</source>
        <translation>Layer name</translation>
    </message>
    <message>
        <source>规划级别</source>
        <translation>Plan level</translation>
    </message>
    <message>
        <source>图层用途</source>
        <translation>Layer role</translation>
    </message>
    <message>
        <source>分类标准</source>
        <translation>Classification scheme</translation>
    </message>
    <message>
        <source>地类代码字段</source>
        <translation>Class code field</translation>
    </message>
    <message>
        <source>地类名称字段</source>
        <translation>Class name field</translation>
    </message>
    <message>
        <source>字符编码</source>
        <translation>Character encoding</translation>
    </message>
    <message>
        <source>选择要导入的文件</source>
        <translation>Choose the file to import</translation>
    </message>
</context>
<context>
    <name>LayerPairDialog</name>
    <message>
        <source>冲突检测（差异图斑）</source>
        <translation>Conflict detection (差异图斑)</translation>
    </message>
    <message>
        <source>检查全部有意义的图层对</source>
        <translation>Check every meaningful layer pair</translation>
    </message>
    <message>
        <source>图层 A</source>
        <translation>Layer A</translation>
    </message>
    <message>
        <source>图层 B</source>
        <translation>Layer B</translation>
    </message>
</context>
<context>
    <name>LayerPropertiesDialog</name>
    <message>
        <source>图层属性 — {0}</source>
        <translation>Layer properties — {0}</translation>
    </message>
    <message>
        <source>名称</source>
        <translation>Name</translation>
    </message>
    <message>
        <source>标题</source>
        <translation>Title</translation>
    </message>
    <message>
        <source>类型</source>
        <translation>Type</translation>
    </message>
    <message>
        <source>规划级别</source>
        <translation>Plan level</translation>
    </message>
    <message>
        <source>图层用途</source>
        <translation>Layer role</translation>
    </message>
    <message>
        <source>要素数</source>
        <translation>Features</translation>
    </message>
    <message>
        <source>来源文件</source>
        <translation>Source file</translation>
    </message>
    <message>
        <source>源坐标系</source>
        <translation>Source CRS</translation>
    </message>
    <message>
        <source>（假定）</source>
        <translation> (assumed)</translation>
    </message>
    <message>
        <source>项目坐标系</source>
        <translation>Project CRS</translation>
    </message>
    <message>
        <source>字符编码</source>
        <translation>Character encoding</translation>
    </message>
    <message>
        <source>分类标准</source>
        <translation>Classification scheme</translation>
    </message>
    <message>
        <source>地类代码字段</source>
        <translation>Class code field</translation>
    </message>
    <message>
        <source>地类名称字段</source>
        <translation>Class name field</translation>
    </message>
    <message>
        <source>导入时间</source>
        <translation>Imported</translation>
    </message>
    <message>
        <source>源文件 SHA-256</source>
        <translation>Source SHA-256</translation>
    </message>
    <message>
        <source>数据性质</source>
        <translation>Data</translation>
    </message>
    <message>
        <source>合成示例数据</source>
        <translation>Synthetic sample data</translation>
    </message>
    <message>
        <source>不透明度</source>
        <translation>Opacity</translation>
    </message>
</context>
<context>
    <name>LayerTree</name>
    <message>
        <source>图层</source>
        <extracomment>Group keys, top (drawn last) to bottom. Legends with more classes than this start collapsed. Default order inside a group, top first (lower rank = higher in the tree).</extracomment>
        <translation>Layer</translation>
    </message>
    <message>
        <source>要素数</source>
        <translation>Features</translation>
    </message>
    <message>
        <source>三区三线</source>
        <translation>Control lines (三区三线)</translation>
    </message>
    <message>
        <source>审查结果</source>
        <translation>Review results</translation>
    </message>
    <message>
        <source>国家级</source>
        <translation>National</translation>
    </message>
    <message>
        <source>省级</source>
        <translation>Provincial</translation>
    </message>
    <message>
        <source>市级</source>
        <translation>City</translation>
    </message>
    <message>
        <source>县级</source>
        <translation>County</translation>
    </message>
    <message>
        <source>评价结果</source>
        <translation>Assessment results</translation>
    </message>
    <message>
        <source>缩放至图层</source>
        <translation>Zoom to layer</translation>
    </message>
    <message>
        <source>打开属性表</source>
        <translation>Open attribute table</translation>
    </message>
    <message>
        <source>属性…</source>
        <translation>Properties…</translation>
    </message>
</context>
<context>
    <name>MainWindow</name>
    <message>
        <source>图层</source>
        <extracomment>Project setting holding the saved map document (layer order, visibility, opacity, view). While more visible layers are being read, wait this long before drawing what is there (fewer half-finished renders competing with the reading for the GIL).</extracomment>
        <translation>Layer</translation>
    </message>
    <message>
        <source>识别结果</source>
        <translation>Identify results</translation>
    </message>
    <message>
        <source>任务</source>
        <translation>Tasks</translation>
    </message>
    <message>
        <source>属性表</source>
        <translation>Attribute table</translation>
    </message>
    <message>
        <source>光标位置（项目坐标系，米）</source>
        <translation>Cursor position (project CRS, metres)</translation>
    </message>
    <message>
        <source>比例尺（可输入 1:N）</source>
        <translation>Scale (type 1:N)</translation>
    </message>
    <message>
        <source>未打开项目</source>
        <translation>No project</translation>
    </message>
    <message>
        <source>比例尺</source>
        <translation>Scale</translation>
    </message>
    <message>
        <source>新建项目…</source>
        <translation>New project…</translation>
    </message>
    <message>
        <source>打开项目…</source>
        <translation>Open project…</translation>
    </message>
    <message>
        <source>打开项目 (Ctrl+O)</source>
        <translation>Open a project (Ctrl+O)</translation>
    </message>
    <message>
        <source>保存项目</source>
        <translation>Save project</translation>
    </message>
    <message>
        <source>保存图层顺序、显示与视图 (Ctrl+S)</source>
        <translation>Save layer order, visibility and view (Ctrl+S)</translation>
    </message>
    <message>
        <source>关闭项目</source>
        <translation>Close project</translation>
    </message>
    <message>
        <source>退出</source>
        <translation>Quit</translation>
    </message>
    <message>
        <source>撤销</source>
        <translation>Undo</translation>
    </message>
    <message>
        <source>重做</source>
        <translation>Redo</translation>
    </message>
    <message>
        <source>导入图层…</source>
        <translation>Import layer…</translation>
    </message>
    <message>
        <source>图层属性…</source>
        <translation>Layer properties…</translation>
    </message>
    <message>
        <source>打开属性表</source>
        <translation>Open attribute table</translation>
    </message>
    <message>
        <source>缩放至图层</source>
        <translation>Zoom to layer</translation>
    </message>
    <message>
        <source>缩放至全图</source>
        <translation>Zoom to full extent</translation>
    </message>
    <message>
        <source>放大</source>
        <translation>Zoom in</translation>
    </message>
    <message>
        <source>缩小</source>
        <translation>Zoom out</translation>
    </message>
    <message>
        <source>缩放至所选</source>
        <translation>Zoom to selection</translation>
    </message>
    <message>
        <source>清除选择</source>
        <translation>Clear selection</translation>
    </message>
    <message>
        <source>全部显示</source>
        <translation>Show all</translation>
    </message>
    <message>
        <source>全部隐藏</source>
        <translation>Hide all</translation>
    </message>
    <message>
        <source>平移</source>
        <translation>Pan</translation>
    </message>
    <message>
        <source>平移地图（也可用鼠标中键或按住空格拖动）</source>
        <translation>Pan the map (also: middle button, or hold Space and drag)</translation>
    </message>
    <message>
        <source>识别</source>
        <translation>Identify</translation>
    </message>
    <message>
        <source>点击地图识别要素</source>
        <translation>Click the map to identify features</translation>
    </message>
    <message>
        <source>选择</source>
        <translation>Select</translation>
    </message>
    <message>
        <source>点击或拖框选择要素（Ctrl 增选）</source>
        <translation>Click or drag a box to select features (Ctrl adds)</translation>
    </message>
    <message>
        <source>冲突检测（差异图斑）…</source>
        <translation>Conflict detection (差异图斑)…</translation>
    </message>
    <message>
        <source>生成合并一张图</source>
        <translation>Build the merged map (一张图)</translation>
    </message>
    <message>
        <source>双评价…</source>
        <translation>Assessment (双评价)…</translation>
    </message>
    <message>
        <source>差异图斑登记表</source>
        <translation>Conflict register</translation>
    </message>
    <message>
        <source>双评价闸门检查</source>
        <translation>Assessment gate check</translation>
    </message>
    <message>
        <source>三区三线检查</source>
        <translation>Control-line checks (三区三线)</translation>
    </message>
    <message>
        <source>质检</source>
        <translation>Quality checks (质检)</translation>
    </message>
    <message>
        <source>全部检查（质检、三区三线、指标、三生）</source>
        <translation>All checks (quality, control lines, indicators, 三生)</translation>
    </message>
    <message>
        <source>全部检查</source>
        <translation>All checks</translation>
    </message>
    <message>
        <source>导出差异图斑登记表（CSV/XLSX）…</source>
        <translation>Export the conflict register (CSV/XLSX)…</translation>
    </message>
    <message>
        <source>导出当前地图（PNG）…</source>
        <translation>Export the current map (PNG)…</translation>
    </message>
    <message>
        <source>快捷键</source>
        <translation>Keyboard shortcuts</translation>
    </message>
    <message>
        <source>关于 multiplan</source>
        <translation>About multiplan</translation>
    </message>
    <message>
        <source>项目</source>
        <translation>Project</translation>
    </message>
    <message>
        <source>最近的项目</source>
        <translation>Recent projects</translation>
    </message>
    <message>
        <source>分析</source>
        <translation>Analysis</translation>
    </message>
    <message>
        <source>审查</source>
        <translation>Review</translation>
    </message>
    <message>
        <source>发布</source>
        <translation>Publish</translation>
    </message>
    <message>
        <source>帮助</source>
        <translation>Help</translation>
    </message>
    <message>
        <source>界面语言</source>
        <translation>Interface language</translation>
    </message>
    <message>
        <source>面板</source>
        <translation>Panels</translation>
    </message>
    <message>
        <source>工具栏</source>
        <translation>Toolbar</translation>
    </message>
    <message>
        <source>绘制 {0} s</source>
        <translation>drawn in {0} s</translation>
    </message>
    <message>
        <source>图层顺序与显示已修改，是否保存？</source>
        <translation>The layer order and visibility have changed. Save them?</translation>
    </message>
    <message>
        <source>任务正在运行</source>
        <translation>Tasks are running</translation>
    </message>
    <message>
        <source>还有 {0} 个任务正在运行，退出将取消它们。是否退出？</source>
        <translation>{0} task(s) still running; quitting cancels them. Quit?</translation>
    </message>
    <message>
        <source>差异图斑</source>
        <translation>Conflicts (差异图斑)</translation>
    </message>
    <message>
        <source>发生意外错误：{0}</source>
        <translation>Unexpected error: {0}</translation>
    </message>
    <message>
        <source>任务失败：{0}</source>
        <translation>Task failed: {0}</translation>
    </message>
    <message>
        <source>打开项目</source>
        <translation>Open project</translation>
    </message>
    <message>
        <source>无法新建项目</source>
        <translation>Cannot create the project</translation>
    </message>
    <message>
        <source>请填写项目文件夹和县（区）名称</source>
        <translation>Fill in the project folder and the county name</translation>
    </message>
    <message>
        <source>无法打开项目</source>
        <translation>Cannot open the project</translation>
    </message>
    <message>
        <source>正在读取图层…</source>
        <translation>Reading layers…</translation>
    </message>
    <message>
        <source>（无）</source>
        <translation>(none)</translation>
    </message>
    <message>
        <source>清除列表</source>
        <translation>Clear the list</translation>
    </message>
    <message>
        <source>无法保存项目</source>
        <translation>Cannot save the project</translation>
    </message>
    <message>
        <source>项目已保存</source>
        <translation>Project saved</translation>
    </message>
    <message>
        <source>读取图层</source>
        <translation>Reading layers</translation>
    </message>
    <message>
        <source>读取图层失败</source>
        <translation>Reading layers failed</translation>
    </message>
    <message>
        <source>项目中还没有图层</source>
        <translation>The project has no layers yet</translation>
    </message>
    <message>
        <source>部分图层无法显示</source>
        <translation>Some layers cannot be shown</translation>
    </message>
    <message>
        <source>已读取 {0} 个图层</source>
        <translation>{0} layers read</translation>
    </message>
    <message>
        <source>分类字段</source>
        <translation>Class field</translation>
    </message>
    <message>
        <source>类别数</source>
        <translation>Classes</translation>
    </message>
    <message>
        <source>栅格大小</source>
        <translation>Raster size</translation>
    </message>
    <message>
        <source>显示方式</source>
        <translation>Drawn as</translation>
    </message>
    <message>
        <source>山体阴影（高程晕渲）</source>
        <translation>Hillshade (elevation tint)</translation>
    </message>
    <message>
        <source>分类着色</source>
        <translation>Class colours</translation>
    </message>
    <message>
        <source>连续色带</source>
        <translation>Colour ramp</translation>
    </message>
    <message>
        <source>{0}：已选 {1} 个要素</source>
        <translation>{0}: {1} features selected</translation>
    </message>
    <message>
        <source>栅格值</source>
        <translation>Raster value</translation>
    </message>
    <message>
        <source>类别</source>
        <translation>Class</translation>
    </message>
    <message>
        <source>导入 {0}</source>
        <translation>Import {0}</translation>
    </message>
    <message>
        <source>冲突检测：{0} × {1}</source>
        <translation>Conflicts: {0} × {1}</translation>
    </message>
    <message>
        <source>冲突检测：全部图层对</source>
        <translation>Conflicts: all layer pairs</translation>
    </message>
    <message>
        <source>冲突检测完成：{0} 个冲突图斑</source>
        <translation>Conflict detection done: {0} conflict pieces</translation>
    </message>
    <message>
        <source>合并一张图：{0} 个图斑，待定 {1}</source>
        <translation>Merged map: {0} pieces, {1} pending</translation>
    </message>
    <message>
        <source>双评价</source>
        <translation>Assessment (双评价)</translation>
    </message>
    <message>
        <source>双评价闸门</source>
        <translation>Assessment gate</translation>
    </message>
    <message>
        <source>{0} {1} — {2}（错误 {3}，警告 {4}）</source>
        <translation>{0} {1} — {2} ({3} errors, {4} warnings)</translation>
    </message>
    <message>
        <source>通过</source>
        <translation>Passed</translation>
    </message>
    <message>
        <source>未通过：{0} 项阻断性检查失败</source>
        <translation>Not passed: {0} blocking check(s) failed</translation>
    </message>
    <message>
        <source>尚未进行冲突检测（分析 → 冲突检测）</source>
        <translation>No conflict detection yet (Analysis → Conflict detection)</translation>
    </message>
    <message>
        <source>导出到文件夹</source>
        <translation>Export to folder</translation>
    </message>
    <message>
        <source>导出差异图斑登记表</source>
        <translation>Export the conflict register</translation>
    </message>
    <message>
        <source>已导出：{0}</source>
        <translation>Exported: {0}</translation>
    </message>
    <message>
        <source>导出当前地图</source>
        <translation>Export the current map</translation>
    </message>
    <message>
        <source>导出地图图片</source>
        <translation>Export map image</translation>
    </message>
    <message>
        <source>multiplan {0}：县级国土空间规划“多规合一”桌面 GIS。</source>
        <translation>multiplan {0}: a desktop GIS for county-level territorial spatial planning (多规合一, multi-plan integration).</translation>
    </message>
    <message>
        <source>滚轮</source>
        <translation>Mouse wheel</translation>
    </message>
    <message>
        <source>以光标为中心缩放</source>
        <translation>Zoom about the cursor</translation>
    </message>
    <message>
        <source>中键拖动 / 空格+左键拖动</source>
        <translation>Middle drag / Space + left drag</translation>
    </message>
    <message>
        <source>放大 / 缩小</source>
        <translation>Zoom in / out</translation>
    </message>
    <message>
        <source>方向键</source>
        <translation>Arrow keys</translation>
    </message>
    <message>
        <source>冲突审查面板</source>
        <translation>Conflict review panel</translation>
    </message>
    <message>
        <source>两规对比</source>
        <translation>Compare plans</translation>
    </message>
    <message>
        <source>下一个未决图斑</source>
        <translation>Next undecided piece</translation>
    </message>
    <message>
        <source>上一个未决图斑</source>
        <translation>Previous undecided piece</translation>
    </message>
    <message>
        <source>界面语言将在重新启动后切换。</source>
        <translation>The interface language changes when multiplan is started again.</translation>
    </message>
</context>
<context>
    <name>MilestoneDialog</name>
    <message>
        <source>例如 长人常〔2026〕12号</source>
        <translation>e.g. 长人常〔2026〕12号</translation>
    </message>
    <message>
        <source>日期</source>
        <translation>Date</translation>
    </message>
    <message>
        <source>文号</source>
        <translation>Document no.</translation>
    </message>
</context>
<context>
    <name>NewProjectDialog</name>
    <message>
        <source>新建项目</source>
        <translation>New project</translation>
    </message>
    <message>
        <source>浏览…</source>
        <translation>Browse…</translation>
    </message>
    <message>
        <source>例如 长兴县</source>
        <translation>e.g. 长兴县</translation>
    </message>
    <message>
        <source>坐标带号前缀（X 坐标前加带号）</source>
        <translation>Zone prefix (zone number before the X coordinate)</translation>
    </message>
    <message>
        <source>项目文件夹</source>
        <translation>Project folder</translation>
    </message>
    <message>
        <source>县（区）名称</source>
        <translation>County name</translation>
    </message>
    <message>
        <source>县域中心经度</source>
        <translation>County central longitude</translation>
    </message>
    <message>
        <source>项目坐标系</source>
        <translation>Project CRS</translation>
    </message>
</context>
<context>
    <name>ReviewController</name>
    <message>
        <source>审查</source>
        <translation>Review</translation>
    </message>
    <message>
        <source>两规对比</source>
        <translation>Compare plans</translation>
    </message>
    <message>
        <source>冲突审查面板</source>
        <translation>Conflict review panel</translation>
    </message>
    <message>
        <source>下一个未决图斑</source>
        <translation>Next undecided piece</translation>
    </message>
    <message>
        <source>上一个未决图斑</source>
        <translation>Previous undecided piece</translation>
    </message>
    <message>
        <source>进入评审模式…</source>
        <translation>Enter review mode…</translation>
    </message>
    <message>
        <source>退出评审模式</source>
        <translation>Leave review mode</translation>
    </message>
    <message>
        <source>规划流程状态…</source>
        <translation>Plan workflow status…</translation>
    </message>
    <message>
        <source>导出评议决定登记表（XLSX/CSV）…</source>
        <translation>Export the decision register (XLSX/CSV)…</translation>
    </message>
    <message>
        <source>导入公众意见（CSV）…</source>
        <translation>Import public comments (CSV)…</translation>
    </message>
    <message>
        <source>在地图上显示公众意见</source>
        <translation>Show public comments on the map</translation>
    </message>
    <message>
        <source>评审模式</source>
        <translation>Review mode</translation>
    </message>
    <message>
        <source>评审模式（只读）— 评议人：{0}</source>
        <translation>Review mode (read-only) — reviewer: {0}</translation>
    </message>
    <message>
        <source>（不在评议人名单中：只能查看，不能记录决定）</source>
        <translation> (not on the reviewer list: may look, cannot record decisions)</translation>
    </message>
    <message>
        <source>评审模式（只读）</source>
        <translation>Review mode (read-only)</translation>
    </message>
    <message>
        <source>进入评审模式</source>
        <translation>Enter review mode</translation>
    </message>
    <message>
        <source>评议人姓名：</source>
        <translation>Reviewer name:</translation>
    </message>
    <message>
        <source>无法读取审查清单</source>
        <translation>Cannot read the review list</translation>
    </message>
    <message>
        <source>读取审查清单</source>
        <translation>Reading the review list</translation>
    </message>
    <message>
        <source>导入公众意见</source>
        <translation>Import public comments</translation>
    </message>
    <message>
        <source>已导入 {0} 条公众意见</source>
        <translation>Imported {0} public comments</translation>
    </message>
    <message>
        <source>无法导入公众意见</source>
        <translation>Cannot import the public comments</translation>
    </message>
    <message>
        <source>图斑在按上位规划调整之后又被修改过，不能自动撤销；请用编辑工具手工恢复</source>
        <translation>The parcel was changed again after the precedence adjustment and cannot be undone automatically; restore it with the editing tools</translation>
    </message>
    <message>
        <source>无法撤销</source>
        <translation>Cannot undo</translation>
    </message>
    <message>
        <source>无法记录评议决定</source>
        <translation>Cannot record the decision</translation>
    </message>
    <message>
        <source>已记录：{0} — {1}</source>
        <translation>Recorded: {0} — {1}</translation>
    </message>
    <message>
        <source>请先结束正在进行的编辑（编辑 → 编辑图层），再按上位规划调整</source>
        <translation>Finish the current editing first (Edit → Edit layer), then adjust by precedence</translation>
    </message>
    <message>
        <source>无法按上位规划调整</source>
        <translation>Cannot adjust by precedence</translation>
    </message>
    <message>
        <source>按上位规划调整 {0}</source>
        <translation>Adjust by precedence {0}</translation>
    </message>
    <message>
        <source>导出评议决定登记表</source>
        <translation>Export the decision register</translation>
    </message>
    <message>
        <source>已导出：{0}</source>
        <translation>Exported: {0}</translation>
    </message>
</context>
<context>
    <name>ReviewModel</name>
    <message>
        <source>编号</source>
        <extracomment>(frame column, header) of the table; the header is translated in :meth:`headerData`.</extracomment>
        <translation>ID</translation>
    </message>
    <message>
        <source>类型</source>
        <translation>Type</translation>
    </message>
    <message>
        <source>严重程度</source>
        <translation>Severity</translation>
    </message>
    <message>
        <source>面积（公顷）</source>
        <translation>Area (ha)</translation>
    </message>
    <message>
        <source>乡镇</source>
        <translation>Township</translation>
    </message>
    <message>
        <source>图层 A × B</source>
        <translation>Layers A × B</translation>
    </message>
    <message>
        <source>决定</source>
        <translation>Decision</translation>
    </message>
    <message>
        <source>审查人</source>
        <translation>Reviewer</translation>
    </message>
</context>
<context>
    <name>ReviewPanel</name>
    <message>
        <source>尚未运行冲突检测，还没有差异图斑可供审查。

请先运行 分析 → 冲突检测（差异图斑），或点击下面的按钮。</source>
        <translation>Conflict detection has not been run: there are no conflict pieces to review yet.

Run Analysis → Conflict detection first, or click the button below.</translation>
    </message>
    <message>
        <source>运行冲突检测…</source>
        <translation>Run conflict detection…</translation>
    </message>
    <message>
        <source> 公顷</source>
        <translation> ha</translation>
    </message>
    <message>
        <source>只显示面积不小于此值的图斑</source>
        <translation>Show only pieces at least this large</translation>
    </message>
    <message>
        <source>含碎片</source>
        <translation>Slivers</translation>
    </message>
    <message>
        <source>碎片图斑（不计入统计）也列出</source>
        <translation>List sliver pieces too (they are not counted in the statistics)</translation>
    </message>
    <message>
        <source>类别</source>
        <translation>Kind</translation>
    </message>
    <message>
        <source>类型</source>
        <translation>Type</translation>
    </message>
    <message>
        <source>严重程度</source>
        <translation>Severity</translation>
    </message>
    <message>
        <source>决定</source>
        <translation>Decision</translation>
    </message>
    <message>
        <source>图层对</source>
        <translation>Layer pair</translation>
    </message>
    <message>
        <source>乡镇</source>
        <translation>Township</translation>
    </message>
    <message>
        <source>面积 ≥</source>
        <translation>Area ≥</translation>
    </message>
    <message>
        <source>刷新</source>
        <translation>Refresh</translation>
    </message>
    <message>
        <source>重新读取差异图斑、质检结果与评议决定</source>
        <translation>Read the conflict pieces, check findings and decisions again</translation>
    </message>
    <message>
        <source>◀ 上一个未决 (P)</source>
        <translation>◀ Previous undecided (P)</translation>
    </message>
    <message>
        <source>下一个未决 (N) ▶</source>
        <translation>Next undecided (N) ▶</translation>
    </message>
    <message>
        <source>对比两规</source>
        <translation>Compare plans</translation>
    </message>
    <message>
        <source>并排显示图斑处的图层 A 与图层 B（同步缩放平移）</source>
        <translation>Show layer A and layer B side by side at the piece (zoom and pan together)</translation>
    </message>
    <message>
        <source>全部</source>
        <translation>All</translation>
    </message>
    <message>
        <source>需审查（冲突、错误、警告、提示）</source>
        <translation>To review (conflict, error, warning, notice)</translation>
    </message>
    <message>
        <source>未决</source>
        <translation>Undecided</translation>
    </message>
    <message>
        <source>已决</source>
        <translation>Decided</translation>
    </message>
    <message>
        <source>显示 {0} / {1} 项 · 未决 {2} 项</source>
        <translation>Showing {0} / {1} · {2} undecided</translation>
    </message>
    <message>
        <source>没有未决的图斑了</source>
        <translation>No undecided pieces left</translation>
    </message>
</context>
<context>
    <name>TaskPanel</name>
    <message>
        <source>没有正在运行的任务</source>
        <translation>No running tasks</translation>
    </message>
    <message>
        <source>清除已完成</source>
        <translation>Clear finished</translation>
    </message>
</context>
<context>
    <name>TaskRow</name>
    <message>
        <source>取消</source>
        <translation>Cancel</translation>
    </message>
    <message>
        <source>正在取消…</source>
        <translation>Cancelling…</translation>
    </message>
    <message>
        <source>完成</source>
        <translation>Done</translation>
    </message>
    <message>
        <source>已取消</source>
        <translation>Cancelled</translation>
    </message>
    <message>
        <source>失败：</source>
        <translation>Failed: </translation>
    </message>
</context>
<context>
    <name>WorkflowDialog</name>
    <message>
        <source>规划流程状态</source>
        <translation>Plan workflow status</translation>
    </message>
    <message>
        <source>闸门</source>
        <translation>Gate</translation>
    </message>
    <message>
        <source>状态</source>
        <translation>Status</translation>
    </message>
    <message>
        <source>原因</source>
        <translation>Reason</translation>
    </message>
    <message>
        <source>双击“无未决冲突图斑”或“质检阻断项通过”，在审查列表中列出相关图斑</source>
        <translation>Double-click &quot;no open conflicts&quot; or &quot;QA blocking checks clean&quot; to list the pieces concerned in the review list</translation>
    </message>
    <message>
        <source>推进到下一阶段</source>
        <translation>Advance to the next stage</translation>
    </message>
    <message>
        <source>重新检查</source>
        <translation>Check again</translation>
    </message>
    <message>
        <source>记录评议委员会决定…</source>
        <translation>Record the committee decision…</translation>
    </message>
    <message>
        <source>登记人大审议/备案…</source>
        <translation>Record congress review / filing…</translation>
    </message>
    <message>
        <source>正在检查闸门…</source>
        <translation>Checking the gates…</translation>
    </message>
    <message>
        <source>规划流程闸门检查</source>
        <translation>Workflow gate check</translation>
    </message>
    <message>
        <source>闸门检查失败</source>
        <translation>Gate check failed</translation>
    </message>
    <message>
        <source>当前阶段：&lt;b&gt;{0}&lt;/b&gt;</source>
        <translation>Current stage: &lt;b&gt;{0}&lt;/b&gt;</translation>
    </message>
    <message>
        <source>规划版本：{0}</source>
        <translation>Plan version: {0}</translation>
    </message>
    <message>
        <source>登记{0}…</source>
        <translation>Record the {0}…</translation>
    </message>
    <message>
        <source>推进到下一阶段：{0}</source>
        <translation>Advance to: {0}</translation>
    </message>
    <message>
        <source>已是最后阶段</source>
        <translation>Last stage reached</translation>
    </message>
    <message>
        <source>下一阶段的依据：{0}</source>
        <translation>Legal basis of the next stage: {0}</translation>
    </message>
    <message>
        <source>评议委员会：尚无决定</source>
        <translation>Committee: no decision yet</translation>
    </message>
    <message>
        <source>评议委员会：{0}（主任委员 {1}，{2}）</source>
        <translation>Committee: {0} (chair {1}, {2})</translation>
    </message>
    <message>
        <source>无法记录评议委员会决定</source>
        <translation>Cannot record the committee decision</translation>
    </message>
    <message>
        <source>登记{0}</source>
        <translation>Record the {0}</translation>
    </message>
    <message>
        <source>无法登记</source>
        <translation>Cannot record</translation>
    </message>
    <message>
        <source>正在推进…</source>
        <translation>Advancing…</translation>
    </message>
    <message>
        <source>推进规划流程</source>
        <translation>Advancing the workflow</translation>
    </message>
    <message>
        <source>无法推进</source>
        <translation>Cannot advance</translation>
    </message>
    <message>
        <source>规划流程已推进到：{0}</source>
        <translation>The workflow is now at: {0}</translation>
    </message>
    <message>
        <source>未满足的闸门：</source>
        <translation>Gates not met:</translation>
    </message>
    <message>
        <source>无法推进到下一阶段</source>
        <translation>Cannot advance to the next stage</translation>
    </message>
</context>
<context>
    <name>identify</name>
    <message>
        <source>{0} ㎡（{1} 公顷 · {2} 亩）</source>
        <translation>{0} m² ({1} ha · {2} mu)</translation>
    </message>
</context>
<context>
    <name>styles</name>
    <message>
        <source>碎片（不计入统计）</source>
        <extracomment>The scheme of the unified ``mp_code`` column written on import. Name of the pseudo-layer showing the conflict register (差异图斑), table ``mp_conflicts``. Provisional zone colours (see the module docstring). Colours for other categorised values (Tableau 10; distinct, colour-blind friendlier). Roles categorised by their name field.</extracomment>
        <translation>Sliver (not counted)</translation>
    </message>
    <message>
        <source>（无代码）</source>
        <translation>(no code)</translation>
    </message>
</context>
<context>
    <name>view_commands</name>
    <message>
        <source>显示 {0}</source>
        <translation>Show {0}</translation>
    </message>
    <message>
        <source>隐藏 {0}</source>
        <translation>Hide {0}</translation>
    </message>
    <message>
        <source>切换 {0} 个图层的显示</source>
        <translation>Toggle {0} layers</translation>
    </message>
    <message>
        <source>调整图层顺序</source>
        <translation>Reorder layers</translation>
    </message>
    <message>
        <source>{0} 不透明度</source>
        <translation>{0} opacity</translation>
    </message>
</context>
</TS>
