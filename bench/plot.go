package main

import (
	"fmt"
	"image/color"
	"math"
	"os"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgsvg"
)

// writePlot draws one panel per workload (records/s, or p50 and p99 for
// the latency workloads) with one horizontal bar per system, plus a panel
// of disk bytes per record, into an SVG file.
func writePlot(path string, cells []*cell, ws []*workload, subtitle string) error {
	var panels []*plot.Plot
	for _, w := range ws {
		p, err := workloadPanel(cells, w)
		if err != nil {
			return err
		}
		if p != nil {
			panels = append(panels, p)
		}
	}
	for _, w := range ws {
		if w.Kind == "read" {
			p, err := barPanel(cells, w, "disk: "+w.Name, "bytes per record (allocated)", func(m measure) float64 { return m.DiskPerRecord })
			if err != nil {
				return err
			}
			if p != nil {
				panels = append(panels, p)
			}
		}
	}
	if len(panels) == 0 {
		return fmt.Errorf("plot: nothing measured")
	}
	const cols = 4
	rows := (len(panels) + cols - 1) / cols
	grid := make([][]*plot.Plot, rows)
	for i := range grid {
		grid[i] = make([]*plot.Plot, cols)
	}
	for i, p := range panels {
		grid[i/cols][i%cols] = p
	}
	width, rowHeight := 4*vg.Length(330), vg.Length(230)
	header := vg.Length(50)
	img := vgsvg.New(width, vg.Length(rows)*rowHeight+header)
	dc := draw.New(img)
	title := draw.TextStyle{Color: color.Black, Font: plot.DefaultFont, XAlign: draw.XCenter, YAlign: draw.YTop, Handler: plot.DefaultTextHandler}
	title.Font.Size = 16
	dc.FillText(title, vg.Point{X: width / 2, Y: dc.Max.Y - 8}, "runnel against its peers, one run: higher is better except latency and disk")
	title.Font.Size = 11
	dc.FillText(title, vg.Point{X: width / 2, Y: dc.Max.Y - 30}, subtitle)
	tiles := draw.Tiles{Rows: rows, Cols: cols, PadTop: header, PadX: 12, PadY: 14, PadLeft: 6, PadRight: 12, PadBottom: 6}
	for r := range grid {
		for c, p := range grid[r] {
			if p != nil {
				p.Draw(tiles.At(dc, c, r))
			}
		}
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := img.WriteTo(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func workloadPanel(cells []*cell, w *workload) (*plot.Plot, error) {
	if w.Kind == "latency" {
		return latencyPanel(cells, w)
	}
	return barPanel(cells, w, w.Name, "records/s", func(m measure) float64 { return m.RecPerSec })
}

// panelCells are w's successful cells, in system order.
func panelCells(cells []*cell, w *workload) []*cell {
	var out []*cell
	for _, c := range cells {
		if c.w == w && c.err == nil {
			out = append(out, c)
		}
	}
	return out
}

func newPanel(title, xlabel string, cs []*cell) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.Title.TextStyle.Font.Size = 12
	p.X.Label.Text = xlabel
	p.X.Min = 0
	p.X.Tick.Marker = humanTicks{}
	// System names go above their bars rather than on the axis: a viewer
	// that substitutes a wider font then spills into empty space instead
	// of under the bars.
	p.HideY()
	p.Y.Min, p.Y.Max = -0.6, float64(len(cs))-0.1
	var names plotter.XYLabels
	for i, c := range cs {
		names.XYs = append(names.XYs, plotter.XY{X: 0, Y: float64(len(cs) - 1 - i)})
		names.Labels = append(names.Labels, c.sys.Name)
	}
	l, err := plotter.NewLabels(names)
	if err == nil {
		l.Offset = vg.Point{Y: barWidth/2 + 1}
		for i := range l.TextStyle {
			l.TextStyle[i].Font.Size = 8
		}
		p.Add(l)
	}
	return p
}

const barWidth = 7

// barPanel draws value(median) for each system as one horizontal bar.
func barPanel(cells []*cell, w *workload, title, xlabel string, value func(measure) float64) (*plot.Plot, error) {
	cs := panelCells(cells, w)
	var any bool
	for _, c := range cs {
		any = any || value(c.med) > 0
	}
	if !any {
		return nil, nil
	}
	p := newPanel(title, xlabel, cs)
	var labels plotter.XYLabels
	for i, c := range cs {
		v := value(c.med)
		y := float64(len(cs) - 1 - i)
		b, err := plotter.NewBarChart(plotter.Values{v}, barWidth)
		if err != nil {
			return nil, err
		}
		b.Horizontal, b.XMin = true, y
		b.Color, b.LineStyle.Width = systemColor(c.sys), 0
		p.Add(b)
		labels.XYs = append(labels.XYs, plotter.XY{X: v, Y: y})
		labels.Labels = append(labels.Labels, " "+human(v))
	}
	return p, addLabels(p, labels)
}

// latencyPanel draws p50 (solid) and p99 (light) per system.
func latencyPanel(cells []*cell, w *workload) (*plot.Plot, error) {
	cs := panelCells(cells, w)
	if len(cs) == 0 {
		return nil, nil
	}
	p := newPanel(w.Name+", process to process", "µs, p50 (dark) and p99 (light)", cs)
	var labels plotter.XYLabels
	for i, c := range cs {
		y := float64(len(cs) - 1 - i)
		for j, v := range []float64{c.med.P99, c.med.P50} {
			b, err := plotter.NewBarChart(plotter.Values{v}, barWidth)
			if err != nil {
				return nil, err
			}
			b.Horizontal, b.XMin = true, y
			b.Color, b.LineStyle.Width = systemColor(c.sys), 0
			if j == 0 {
				b.Color = lighten(b.Color)
			}
			p.Add(b)
		}
		labels.XYs = append(labels.XYs, plotter.XY{X: c.med.P99, Y: y})
		labels.Labels = append(labels.Labels, fmt.Sprintf(" %s / %s", human(c.med.P50), human(c.med.P99)))
	}
	return p, addLabels(p, labels)
}

func addLabels(p *plot.Plot, xy plotter.XYLabels) error {
	l, err := plotter.NewLabels(xy)
	if err != nil {
		return err
	}
	for i := range l.TextStyle {
		l.TextStyle[i].Font.Size = 8
		l.TextStyle[i].YAlign = draw.YCenter
	}
	p.Add(l)
	// Leave room right of the longest bar for its label.
	max := 0.0
	for _, v := range xy.XYs {
		max = math.Max(max, v.X)
	}
	p.X.Max = max * 1.35
	return nil
}

func systemColor(s *system) color.Color {
	switch {
	case s.Name == reference:
		return color.RGBA{R: 0xd6, G: 0x3b, B: 0x1f, A: 0xff}
	case s.Name == "runnel/io_uring":
		return color.RGBA{R: 0xf0, G: 0x8a, B: 0x4b, A: 0xff}
	case s.Raw || s.LatencyRef:
		return color.RGBA{R: 0x55, G: 0x55, B: 0x55, A: 0xff}
	}
	return color.RGBA{R: 0x3b, G: 0x6e, B: 0xa8, A: 0xff}
}

func lighten(c color.Color) color.Color {
	r, g, b, _ := c.RGBA()
	mix := func(v uint32) uint8 { return uint8((v>>8 + 2*255) / 3) }
	return color.RGBA{R: mix(r), G: mix(g), B: mix(b), A: 0xff}
}

// human formats v as 1.2M, 340k, 12.5.
func human(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.3gM", v/1e6)
	case v >= 1e4:
		return fmt.Sprintf("%.0fk", v/1e3)
	case v >= 1e3:
		return fmt.Sprintf("%.3gk", v/1e3)
	}
	return fmt.Sprintf("%.3g", v)
}

// humanTicks labels the value axis with human numbers instead of 1e+06.
type humanTicks struct{}

func (humanTicks) Ticks(min, max float64) []plot.Tick {
	ts := plot.DefaultTicks{}.Ticks(min, max)
	for i := range ts {
		if ts[i].Label != "" {
			ts[i].Label = human(ts[i].Value)
		}
	}
	return ts
}
