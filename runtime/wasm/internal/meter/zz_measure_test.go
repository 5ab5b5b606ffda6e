package meter

import (
	"os"
	"path/filepath"
	"testing"
)

func TestZZMeasure(t *testing.T) {
	files, _ := filepath.Glob("../../../../bin/*/*.wasm")
	for _, f := range files {
		bin, _ := os.ReadFile(f)
		m, err := readModule(bin, Limits{})
		if err != nil {
			t.Fatal(f, err)
		}
		var sumW2, maxW uint64
		var maxBody, maxDepth, maxBlocks, maxBulk, maxLoc, ncode uint64
		var data, datasegs uint64
		for _, s := range m.sections {
			if s.id == secData {
				n, _, _ := readVecLen(s.content, 0)
				datasegs = uint64(n)
				data = uint64(len(s.content))
			}
			if s.id != secCode {
				continue
			}
			b := s.content
			count, pos, _ := readVecLen(b, 0)
			ncode = uint64(count)
			for i := uint32(0); i < count; i++ {
				size, next, _ := readU32(b, pos)
				body := b[next : next+int(size)]
				pos = next + int(size)
				maxBody = max(maxBody, uint64(size))
				groups, p, _ := readVecLen(body, 0)
				var loc uint64
				for j := uint32(0); j < groups; j++ {
					n, nx, _ := readU32(body, p)
					loc += uint64(n)
					p, _ = skipValType(body, nx)
				}
				maxLoc = max(maxLoc, loc)
				depth, blocks, bulk, loops := uint64(1), uint64(0), uint64(0), uint64(0)
				for p < len(body) {
					st := p
					kind, nx, _ := skipInstruction(body, p)
					p = nx
					switch kind {
					case immBlock, immLoop, immTryTable:
						if kind == immLoop {
							loops++
						}
						depth++
						blocks++
						maxDepth = max(maxDepth, depth)
					case immEnd:
						depth--
					case immMisc:
						if isBulk(body, st) {
							bulk++
						}
					}
				}
				maxBlocks = max(maxBlocks, blocks)
				w := (blocks - loops) + 4*loops + 6*bulk + 2
				maxW = max(maxW, w)
				sumW2 += w * w
				maxBulk = max(maxBulk, bulk)
			}
		}
		var tmin uint64
		for _, tb := range m.tableMax {
			tmin += uint64(tb.min)
		}
		t.Logf("maxW %d sumW2 %d", maxW, sumW2)
		t.Logf("%s: size %d funcs %d code %d body %d depth %d blocks %d bulk %d locals %d data %d/%d segs tables %d min %d globals %d types %d", filepath.Base(f), len(bin), len(m.funcTypes), ncode, maxBody, maxDepth, maxBlocks, maxBulk, maxLoc, data, datasegs, m.tables(), tmin, m.globals(), m.types)
	}
}
